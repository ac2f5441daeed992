#ifndef CSYSTEMSHIMS_SHIM_H
#define CSYSTEMSHIMS_SHIM_H

// Linux calls Swift's Glibc module does not import (prctl is variadic; malloc.h is not in it).
// Header-only: every symbol here starts with `CSystemShims_`.

#include <stdint.h>
#include <sys/prctl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#ifndef MSG_CMSG_CLOEXEC
#define MSG_CMSG_CLOEXEC 0x40000000
#endif
#ifdef __GLIBC__
#include <malloc.h>
#endif

#ifdef __GLIBC__
#include <spawn.h>
// Declared only under _GNU_SOURCE (glibc 2.34 and later), as accept4 below.
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);

/// A spawned child closes every descriptor from `from` on (the tests' processes keep only their
/// standard streams).
static inline int CSystemShims_spawnClosesFrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}
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

/// epoll_ctl(EPOLL_CTL_MOD): the events watched for `fd`, with `data` as before.
static inline int CSystemShims_epollModify(int epoll, int fd, uint32_t events, uint64_t data) {
    struct epoll_event event;
    event.events = events;
    event.data.u64 = data;
    return epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &event);
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

// memfd_create and the seals are declared only under _GNU_SOURCE, and fcntl.h and linux/memfd.h
// are not included here: this header's includes are the Glibc module's too, and a clean build
// then attributes their declarations to this module, hiding them from files that import Glibc
// alone. The prototypes and values are Linux's.
extern int memfd_create(const char *name, unsigned int flags);
extern int fcntl(int fd, int command, ...);
#define CSYSTEMSHIMS_MFD_CLOEXEC 0x0001U
#define CSYSTEMSHIMS_MFD_ALLOW_SEALING 0x0002U
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#define F_SEAL_WRITE 0x0008
#endif

/// The seals that make a memfd immutable: no write, grow, shrink, nor any further seal.
static const int CSystemShims_SEALS_IMMUTABLE = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
/// The seals that make its contents fixed (a file with these cannot change under its reader).
static const int CSystemShims_SEALS_CONTENTS = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;

/// memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING).
static inline int CSystemShims_sealableMemoryFile(const char *name) {
    return memfd_create(name, CSYSTEMSHIMS_MFD_CLOEXEC | CSYSTEMSHIMS_MFD_ALLOW_SEALING);
}

/// fcntl(fd, F_ADD_SEALS, seals).
static inline int CSystemShims_addSeals(int fd, int seals) {
    return fcntl(fd, F_ADD_SEALS, seals);
}

/// fcntl(fd, F_GET_SEALS): the seals, or -1 (EINVAL: not a file that takes seals).
static inline int CSystemShims_getSeals(int fd) {
    return fcntl(fd, F_GET_SEALS);
}

/// sendmsg of `payload` to `address` with `descriptor` attached (SCM_RIGHTS), as sd_notify's
/// FDSTORE=1 needs it, without waiting when the receiver's queue is full; the CMSG macros are
/// not Swift's.
static inline ssize_t CSystemShims_sendWithDescriptor(
    int socket, const struct sockaddr *address, socklen_t addressLength, const void *payload, size_t length, int descriptor) {
    struct iovec vector = {.iov_base = (void *)payload, .iov_len = length};
    union {
        char buffer[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    __builtin_memset(&control, 0, sizeof(control));
    struct msghdr message = {0};
    message.msg_name = (void *)address;
    message.msg_namelen = addressLength;
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    message.msg_control = control.buffer;
    message.msg_controllen = sizeof(control.buffer);
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    __builtin_memcpy(CMSG_DATA(header), &descriptor, sizeof(int));
    return sendmsg(socket, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/// recvmsg of one datagram into `buffer`, and the first descriptor attached to it into
/// `descriptor` (-1 when none): a service manager's side of FDSTORE=1, for tests.
static inline ssize_t CSystemShims_receiveWithDescriptor(int socket, void *buffer, size_t capacity, int *descriptor) {
    struct iovec vector = {.iov_base = buffer, .iov_len = capacity};
    union {
        char buffer[CMSG_SPACE(sizeof(int) * 4)];
        struct cmsghdr align;
    } control;
    struct msghdr message = {0};
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    message.msg_control = control.buffer;
    message.msg_controllen = sizeof(control.buffer);
    *descriptor = -1;
    ssize_t received = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
    if (received < 0) return received;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_RIGHTS && *descriptor < 0) {
            __builtin_memcpy(descriptor, CMSG_DATA(header), sizeof(int));
        }
    }
    return received;
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
