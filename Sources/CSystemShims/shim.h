#ifndef CSYSTEMSHIMS_SHIM_H
#define CSYSTEMSHIMS_SHIM_H

// Linux calls Swift's Glibc module does not import (prctl is variadic; malloc.h is not in it).
// Header-only: every symbol here starts with `CSystemShims_`.

#include <stdint.h>
#include <sys/prctl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

// accept4 is declared only under _GNU_SOURCE, which this header cannot set for headers other
// modules have already imported; the prototype is the Linux one.
extern int accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);

/// accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC).
static inline int CSystemShims_acceptNonBlocking(int fd) {
    return accept4(fd, (struct sockaddr *)0, (socklen_t *)0, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

/// eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC).
static inline int CSystemShims_eventFD(void) {
    return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

static const uint32_t CSystemShims_EPOLLIN = EPOLLIN;
static const uint32_t CSystemShims_EPOLLOUT = EPOLLOUT;
static const uint32_t CSystemShims_EPOLLRDHUP = EPOLLRDHUP;
static const uint32_t CSystemShims_EPOLLHUP = EPOLLHUP;
static const uint32_t CSystemShims_EPOLLERR = EPOLLERR;
static const uint32_t CSystemShims_EPOLLEXCLUSIVE = EPOLLEXCLUSIVE;

/// epoll_ctl(EPOLL_CTL_ADD) with `data` as the event's u64. (struct epoll_event is packed on
/// x86-64; Swift is kept away from its layout.)
static inline int CSystemShims_epollAdd(int epoll, int fd, uint32_t events, uint64_t data) {
    struct epoll_event event;
    event.events = events;
    event.data.u64 = data;
    return epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
}

/// epoll_ctl(EPOLL_CTL_DEL).
static inline int CSystemShims_epollRemove(int epoll, int fd) {
    struct epoll_event event = {0};
    return epoll_ctl(epoll, EPOLL_CTL_DEL, fd, &event);
}

/// epoll_wait for at most 64 events, unpacked into `data` and `events` (64 entries each).
static inline int CSystemShims_epollWait(int epoll, uint64_t *data, uint32_t *events, int timeoutMilliseconds) {
    struct epoll_event ready[64];
    int count = epoll_wait(epoll, ready, 64, timeoutMilliseconds);
    for (int index = 0; index < count; index++) {
        data[index] = ready[index].data.u64;
        events[index] = ready[index].events;
    }
    return count;
}

/// prctl(PR_SET_DUMPABLE, value).
static inline int CSystemShims_setDumpable(int value) {
    return prctl(PR_SET_DUMPABLE, (unsigned long)value, 0UL, 0UL, 0UL);
}

/// prctl(PR_SET_NAME, name): the calling thread's name (15 bytes at most), as `top -H` shows it.
static inline int CSystemShims_setThreadName(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)name, 0UL, 0UL, 0UL);
}

/// prctl(PR_GET_DUMPABLE).
static inline int CSystemShims_getDumpable(void) {
    return prctl(PR_GET_DUMPABLE, 0UL, 0UL, 0UL, 0UL);
}

/// malloc_trim(0): free heap pages back to the system (glibc; elsewhere nothing).
static inline int CSystemShims_releaseFreeHeap(void) {
#ifdef __GLIBC__
    return malloc_trim(0);
#else
    return 0;
#endif
}

#endif
