/* LD_PRELOAD shim for the fault matrix: stops ecs-boot at one file operation so the test can look
 * at the disk (and SIGKILL it) in the middle of a write. Test-only, never shipped.
 *
 *   ECS_BOOT_SHIM_PAUSE=open:ecs.config    after opening for writing a file whose name contains
 *                                          "ecs.config" (the temp file, or the target itself)
 *   ECS_BOOT_SHIM_PAUSE=rename:ecs.config  before renaming onto a name containing "ecs.config"
 *   ECS_BOOT_SHIM_PAUSE_NTH=3              the 3rd match, not the 1st
 *   ECS_BOOT_SHIM_MARK=/path/mark          written ("<op> <path>") when paused; the process
 *                                          waits until the test deletes it (or 120 s pass)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int hits;

static const char *wanted(const char *op) {
    const char *spec = getenv("ECS_BOOT_SHIM_PAUSE");
    size_t n = strlen(op);
    if (!spec || strncmp(spec, op, n) != 0 || spec[n] != ':') return NULL;
    return spec + n + 1;
}

static void pause_here(const char *op, const char *path) {
    const char *mark = getenv("ECS_BOOT_SHIM_MARK");
    const char *nth = getenv("ECS_BOOT_SHIM_PAUSE_NTH");
    if (!mark || __atomic_add_fetch(&hits, 1, __ATOMIC_SEQ_CST) != (nth ? atoi(nth) : 1)) return;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", mark);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fprintf(f, "%s %s\n", op, path);
    fclose(f);
    rename(tmp, mark); /* the test sees the mark whole or not at all */
    struct timespec step = {0, 10 * 1000 * 1000};
    for (int i = 0; i < 12000 && access(mark, F_OK) == 0; i++) nanosleep(&step, NULL);
}

static const char *base(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void after_open(const char *path, int flags, int fd) {
    const char *match = wanted("open");
    if (fd >= 0 && match && (flags & (O_WRONLY | O_RDWR)) && strstr(base(path), match))
        pause_here("open", path);
}

#define OPEN_WRAPPER(name)                                                                \
    int name(const char *path, int flags, ...) {                                          \
        static int (*real)(const char *, int, ...);                                       \
        if (!real) real = dlsym(RTLD_NEXT, #name);                                        \
        mode_t mode = 0;                                                                  \
        if (flags & (O_CREAT | O_TMPFILE)) {                                              \
            va_list ap;                                                                   \
            va_start(ap, flags);                                                          \
            mode = va_arg(ap, mode_t);                                                    \
            va_end(ap);                                                                   \
        }                                                                                 \
        int fd = real(path, flags, mode);                                                 \
        after_open(path, flags, fd);                                                      \
        return fd;                                                                        \
    }

#define OPENAT_WRAPPER(name)                                                              \
    int name(int dirfd, const char *path, int flags, ...) {                               \
        static int (*real)(int, const char *, int, ...);                                  \
        if (!real) real = dlsym(RTLD_NEXT, #name);                                        \
        mode_t mode = 0;                                                                  \
        if (flags & (O_CREAT | O_TMPFILE)) {                                              \
            va_list ap;                                                                   \
            va_start(ap, flags);                                                          \
            mode = va_arg(ap, mode_t);                                                    \
            va_end(ap);                                                                   \
        }                                                                                 \
        int fd = real(dirfd, path, flags, mode);                                          \
        after_open(path, flags, fd);                                                      \
        return fd;                                                                        \
    }

OPEN_WRAPPER(open)
OPEN_WRAPPER(open64)
OPENAT_WRAPPER(openat)
OPENAT_WRAPPER(openat64)

static void before_rename(const char *newpath) {
    const char *match = wanted("rename");
    if (match && strstr(base(newpath), match)) pause_here("rename", newpath);
}

int rename(const char *oldpath, const char *newpath) {
    static int (*real)(const char *, const char *);
    if (!real) real = dlsym(RTLD_NEXT, "rename");
    before_rename(newpath);
    return real(oldpath, newpath);
}

int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
    static int (*real)(int, const char *, int, const char *);
    if (!real) real = dlsym(RTLD_NEXT, "renameat");
    before_rename(newpath);
    return real(olddirfd, oldpath, newdirfd, newpath);
}

int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
              unsigned int flags) {
    static int (*real)(int, const char *, int, const char *, unsigned int);
    if (!real) real = dlsym(RTLD_NEXT, "renameat2");
    before_rename(newpath);
    return real(olddirfd, oldpath, newdirfd, newpath, flags);
}
