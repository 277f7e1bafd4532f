#include "CVelocitySystem.h"

#include <errno.h>
#include <fcntl.h>

#ifdef __linux__
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

int velocity_open_beneath(int dirfd, const char *path, int flags) {
    struct open_how how = {
        .flags = (unsigned long long)flags,
        .mode = 0,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}
#else
int velocity_open_beneath(int dirfd, const char *path, int flags) {
    // No openat2: refuse every symlink on the way rather than risk following one out of the directory.
    return openat(dirfd, path, flags | O_NOFOLLOW_ANY);
}
#endif
