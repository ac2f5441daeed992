// spawn-time: the wall-clock time of a whole process, start to exit, per call.
//
//   spawn-time -n CALLS -- COMMAND [ARGS...]
//
// Runs COMMAND CALLS times one after another (posix_spawn, standard output to /dev/null) and
// prints calls=N errors=E per_call_us=T. A shell loop would add its own fork to every call.
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv) {
    int calls = 100, option;
    while ((option = getopt(argc, argv, "+n:")) != -1) {
        if (option == 'n') calls = atoi(optarg);
        else { fprintf(stderr, "usage: spawn-time -n CALLS -- COMMAND [ARGS...]\n"); return 2; }
    }
    if (optind < argc && strcmp(argv[optind], "--") == 0) optind++;
    if (optind >= argc || calls < 1) { fprintf(stderr, "usage: spawn-time -n CALLS -- COMMAND [ARGS...]\n"); return 2; }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    int errors = 0;
    uint64_t start = now_ns();
    for (int i = 0; i < calls; i++) {
        pid_t pid;
        if (posix_spawnp(&pid, argv[optind], &actions, NULL, argv + optind, environ) != 0) { errors++; continue; }
        int status;
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) errors++;
    }
    uint64_t elapsed = now_ns() - start;
    printf("calls=%d errors=%d per_call_us=%.1f\n", calls, errors, (double)elapsed / calls / 1000.0);
    return errors ? 1 : 0;
}
