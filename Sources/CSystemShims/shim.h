#ifndef CSYSTEMSHIMS_SHIM_H
#define CSYSTEMSHIMS_SHIM_H

// Linux calls Swift's Glibc module does not import (prctl is variadic; malloc.h is not in it).
// Header-only: every symbol here starts with `CSystemShims_`.

#include <sys/prctl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/// prctl(PR_SET_DUMPABLE, value).
static inline int CSystemShims_setDumpable(int value) {
    return prctl(PR_SET_DUMPABLE, (unsigned long)value, 0UL, 0UL, 0UL);
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
