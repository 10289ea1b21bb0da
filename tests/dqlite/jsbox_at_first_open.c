// LD_PRELOAD shim: registers jsbox as an automatic extension at the process's first
// sqlite3_open_v2 (not before: go-dqlite configures SQLite's threading mode at start-up, which
// sqlite3_auto_extension, initializing SQLite, would pre-empt).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <stdio.h>
typedef struct sqlite3 sqlite3;
static int registered;
int sqlite3_open_v2(const char *name, sqlite3 **db, int flags, const char *vfs) {
    static int (*real_open)(const char *, sqlite3 **, int, const char *);
    if (!real_open) real_open = dlsym(RTLD_NEXT, "sqlite3_open_v2");
    if (!registered) {
        registered = 1;
        const char *path = getenv("JSBOX_EXTENSION");
        void *lib = path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
        void *init = lib ? dlsym(lib, "sqlite3_jsbox_init") : NULL;
        int (*auto_extension)(void (*)(void)) = dlsym(RTLD_NEXT, "sqlite3_auto_extension");
        if (!init || !auto_extension || auto_extension((void (*)(void))init) != 0)
            fprintf(stderr, "jsbox shim: could not register %s\n", path ? path : "(JSBOX_EXTENSION unset)");
    }
    return real_open(name, db, flags, vfs);
}
