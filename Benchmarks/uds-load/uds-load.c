// uds-load: an HTTP/1.1 load generator for Unix domain sockets (no Debian tool does this).
//
//   uds-load -s SOCKET -p PATH [-c CONNECTIONS] [-d SECONDS] [-n | -o]
//
// -c: concurrent connections, one thread each, keep-alive (default 1)
// -n: a new connection per request (sequential per thread)
// -b JSON: POST this body (application/json) instead of a GET
// -o: once: every thread connects, all wait at a barrier, then each sends one request at the
//     same moment (a thundering herd); no -d. Every request must be answered with 200.
// Prints: requests, errors, requests/s, p50/p90/p99/max latency in microseconds.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *socket_path;
static char request[16384];
static size_t request_length;
static int new_connection_each;
static int once;
static pthread_barrier_t barrier;
static double duration_seconds = 5;
static volatile int stop;

typedef struct {
    uint32_t *latencies;
    size_t count, capacity;
    size_t errors;
} worker_t;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int connect_socket(void) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strncpy(address.sun_path, socket_path, sizeof(address.sun_path) - 1);
    if (connect(fd, (struct sockaddr *)&address, sizeof(address)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

// Sends the request and reads one whole response (headers + Content-Length body). 0 on a 200.
static int exchange(int fd, char *buffer, size_t size) {
    size_t sent = 0;
    while (sent < request_length) {
        ssize_t n = send(fd, request + sent, request_length - sent, MSG_NOSIGNAL);
        if (n <= 0) return -1;
        sent += (size_t)n;
    }
    size_t have = 0;
    long body_length = -1;
    char *header_end = NULL;
    for (;;) {
        ssize_t n = recv(fd, buffer + have, size - have - 1, 0);
        if (n <= 0) return -1;
        have += (size_t)n;
        buffer[have] = 0;
        if (!header_end) {
            header_end = strstr(buffer, "\r\n\r\n");
            if (header_end) {
                char *length = strcasestr(buffer, "content-length:");
                if (!length || length > header_end) return -1;
                body_length = strtol(length + 15, NULL, 10);
            }
        }
        if (header_end && (long)(have - (size_t)(header_end + 4 - buffer)) >= body_length) break;
        if (have >= size - 1) return -1;
    }
    // Any 2xx: a gateway's POST is answered 201.
    return strncmp(buffer, "HTTP/1.1 2", 10) == 0 ? 0 : -1;
}

static void record(worker_t *worker, uint64_t nanoseconds) {
    if (worker->count == worker->capacity) {
        worker->capacity = worker->capacity ? worker->capacity * 2 : 65536;
        worker->latencies = realloc(worker->latencies, worker->capacity * sizeof(uint32_t));
    }
    worker->latencies[worker->count++] = (uint32_t)(nanoseconds / 1000);
}

static void *run_once(void *argument) {
    worker_t *worker = argument;
    char *buffer = malloc(65536);
    int fd = connect_socket();
    pthread_barrier_wait(&barrier);
    uint64_t start = now_ns();
    if (fd < 0 || exchange(fd, buffer, 65536) != 0) worker->errors++;
    else record(worker, now_ns() - start);
    if (fd >= 0) close(fd);
    free(buffer);
    return NULL;
}

static void *run(void *argument) {
    worker_t *worker = argument;
    char *buffer = malloc(65536);
    int fd = new_connection_each ? -1 : connect_socket();
    while (!stop) {
        uint64_t start = now_ns();
        if (new_connection_each || fd < 0) {
            if (fd >= 0) close(fd);
            fd = connect_socket();
            if (fd < 0) { worker->errors++; continue; }
        }
        if (exchange(fd, buffer, 65536) != 0) {
            worker->errors++;
            close(fd);
            fd = -1;
            continue;
        }
        record(worker, now_ns() - start);
        if (new_connection_each) { close(fd); fd = -1; }
    }
    if (fd >= 0) close(fd);
    free(buffer);
    return NULL;
}

static int compare(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const char *path = "/healthz";
    const char *body = NULL;
    int connections = 1, option;
    while ((option = getopt(argc, argv, "s:p:c:d:nob:")) != -1) {
        switch (option) {
        case 's': socket_path = optarg; break;
        case 'p': path = optarg; break;
        case 'c': connections = atoi(optarg); break;
        case 'd': duration_seconds = atof(optarg); break;
        case 'n': new_connection_each = 1; break;
        case 'o': once = 1; break;
        case 'b': body = optarg; break;
        default:
            fprintf(stderr, "usage: uds-load -s SOCKET -p PATH [-c CONNECTIONS] [-d SECONDS] [-n | -o] [-b JSON]\n");
            return 2;
        }
    }
    if (!socket_path || connections < 1) {
        fprintf(stderr, "usage: uds-load -s SOCKET -p PATH [-c CONNECTIONS] [-d SECONDS] [-n | -o]\n");
        return 2;
    }
    if (body)
        request_length = (size_t)snprintf(request, sizeof(request),
                                          "POST %s HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\nContent-Type: application/json\r\n"
                                          "Content-Length: %zu\r\n%s\r\n%s",
                                          path, strlen(body), new_connection_each ? "Connection: close\r\n" : "", body);
    else
        request_length = (size_t)snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n%s\r\n",
                                          path, new_connection_each ? "Connection: close\r\n" : "");
    worker_t *workers = calloc((size_t)connections, sizeof(worker_t));
    pthread_t *threads = calloc((size_t)connections, sizeof(pthread_t));
    uint64_t start = now_ns();
    if (once) {
        pthread_barrier_init(&barrier, NULL, (unsigned)connections);
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setstacksize(&attributes, 256 * 1024);
        for (int i = 0; i < connections; i++) {
            if (pthread_create(&threads[i], &attributes, run_once, &workers[i]) != 0) {
                fprintf(stderr, "uds-load: cannot start thread %d\n", i);
                return 2;
            }
        }
    } else {
        for (int i = 0; i < connections; i++) pthread_create(&threads[i], NULL, run, &workers[i]);
        struct timespec wait = {.tv_sec = (time_t)duration_seconds, .tv_nsec = (long)((duration_seconds - (time_t)duration_seconds) * 1e9)};
        nanosleep(&wait, NULL);
        stop = 1;
    }
    size_t total = 0, errors = 0;
    for (int i = 0; i < connections; i++) {
        pthread_join(threads[i], NULL);
        total += workers[i].count;
        errors += workers[i].errors;
    }
    double elapsed = (double)(now_ns() - start) / 1e9;
    uint32_t *all = malloc((total ? total : 1) * sizeof(uint32_t));
    size_t at = 0;
    for (int i = 0; i < connections; i++) {
        memcpy(all + at, workers[i].latencies, workers[i].count * sizeof(uint32_t));
        at += workers[i].count;
    }
    qsort(all, total, sizeof(uint32_t), compare);
    #define PCT(p) (total ? all[(size_t)((double)(total - 1) * (p))] : 0)
    printf("requests=%zu errors=%zu rps=%.1f p50_us=%u p90_us=%u p99_us=%u max_us=%u\n",
           total, errors, (double)total / elapsed, PCT(0.50), PCT(0.90), PCT(0.99), total ? all[total - 1] : 0);
    if (once) return errors ? 1 : 0;
    return errors > total / 100 ? 1 : 0;
}
