import NIOCore

extension Channel {
    /// Stops or resumes reading, for back-pressure. Resuming also asks for a read: an HTTP/2 stream channel,
    /// unlike a socket, does not read again by itself when `autoRead` comes back on.
    func setReading(_ reading: Bool) {
        setOption(.autoRead, value: reading).whenFailure { _ in }
        if reading { read() }
    }
}
