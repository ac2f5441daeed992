// LD_PRELOAD shim for scripts/close-check: every close(2) that fails with EBADF (a descriptor
// closed twice, or never opened) is written to $CLOSE_CHECK_LOG with the process, its executable
// and a backtrace, and the call's result is left as it was. A double close in the daemon would be
// a security defect: the number may already belong to another client's connection.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int (*real_close)(int);

static int open_log(char *exe, size_t size) {
    const char *path = getenv("CLOSE_CHECK_LOG");
    if (path == NULL) return -1;
    int log = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (log < 0) return -1;
    memset(exe, 0, size);
    if (readlink("/proc/self/exe", exe, size - 1) < 0) strcpy(exe, "?");
    return log;
}

// One line per process the shim is loaded into, so that the summary can say which were checked.
__attribute__((constructor)) static void loaded(void) {
    char exe[256], line[512];
    int log = open_log(exe, sizeof exe);
    if (log < 0) return;
    int n = snprintf(line, sizeof line, "LOADED pid %d exe %s\n", getpid(), exe);
    (void)!write(log, line, (size_t)n);
    syscall(SYS_close, log);
}

static void report(int fd) {
    char exe[256];
    int log = open_log(exe, sizeof exe);
    if (log < 0) return;
    char head[512];
    int n = snprintf(head, sizeof head, "EBADF close(%d) pid %d tid %ld exe %s\n", fd, getpid(), (long)syscall(SYS_gettid), exe);
    (void)!write(log, head, (size_t)n);
    void *frames[32];
    int count = backtrace(frames, 32);
    backtrace_symbols_fd(frames, count, log);
    (void)!write(log, "\n", 1);
    syscall(SYS_close, log);
}

int close(int fd) {
    if (real_close == NULL) real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
    int saved = errno;
    int result = real_close(fd);
    if (result == -1 && errno == EBADF) {
        int error = errno;
        report(fd);
        errno = error;
    } else if (result == 0) {
        errno = saved;
    }
    return result;
}
