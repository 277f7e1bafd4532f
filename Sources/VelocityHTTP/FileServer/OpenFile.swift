import CVelocitySystem
import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An open file or directory, closed when the last reference goes. Its descriptor never changes, so sharing
/// it between the event loop and the thread reading it is safe.
public final class OpenFile: Sendable {
    public let descriptor: CInt
    let size: Int
    let modified: (seconds: Int, nanoseconds: Int)
    let isDirectory: Bool
    let isRegular: Bool

    /// Opens `path` under the directory `base` without leaving it; nil when it does not exist there or would
    /// mean leaving it (through `..` or a symlink pointing outside).
    init?(beneath base: CInt, _ path: String) {
        let descriptor = velocity_open_beneath(base, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
        guard descriptor >= 0 else { return nil }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            close(descriptor)
            return nil
        }
        self.descriptor = descriptor
        size = Int(info.st_size)
        modified = (Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec))
        isDirectory = info.st_mode & S_IFMT == S_IFDIR
        isRegular = info.st_mode & S_IFMT == S_IFREG
    }

    /// Opens a directory (relative paths from the working directory), following symlinks: a root may be one,
    /// repointed by deploys.
    init?(directory path: String) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        self.descriptor = descriptor
        size = 0
        modified = (0, 0)
        isDirectory = true
        isRegular = false
    }

    deinit {
        close(descriptor)
    }

    /// Reads up to `count` bytes at `offset` onto the end of `buffer`; returns how many were read (0 at the
    /// end of the file). Blocks: call it off the event loop.
    public func read(into buffer: inout ByteBuffer, at offset: Int, count: Int) throws(IOError) -> Int {
        var read = -1
        while read < 0 {
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { space in
                read = pread(descriptor, space.baseAddress, count, off_t(offset))
                return max(read, 0)
            }
            if read < 0, errno != EINTR { throw IOError(errnoCode: errno, reason: "pread") }
        }
        return read
    }
}
