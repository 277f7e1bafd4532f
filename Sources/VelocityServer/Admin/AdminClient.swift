import Foundation
import VelocityConfig

#if canImport(Glibc)
    import Glibc
#endif

/// A small blocking HTTP/1.1 client for the CLI's conversations with a running server's admin API.
public struct AdminClient: Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var body: String
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public let address: ListenAddress
    public let token: String?

    public init(address: ListenAddress, token: String? = ProcessInfo.processInfo.environment["VELOCITY_ADMIN_TOKEN"]) {
        self.address = address
        self.token = token
    }

    public func send(
        _ method: String,
        _ path: String,
        body: [UInt8] = [],
        contentType: String = "application/json",
        headers: [String: String] = [:]
    ) throws -> Response {
        let socket = try connect()
        defer { close(socket) }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(hostHeader)\r\nConnection: close\r\n"
        head += "Content-Length: \(body.count)\r\nContent-Type: \(contentType)\r\n"
        if let token { head += "Authorization: Bearer \(token)\r\n" }
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        try writeAll(socket, Array(head.utf8) + body)
        let reply = try readAll(socket)
        guard let split = reply.firstRange(of: [13, 10, 13, 10]),
            let statusLine = String(bytes: reply[..<split.lowerBound], encoding: .utf8)?.split(separator: "\r\n").first,
            let status = statusLine.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        else { throw Failure(description: "malformed response from the admin API at \(address)") }
        return Response(status: status, body: String(decoding: reply[split.upperBound...], as: UTF8.self))
    }

    private var hostHeader: String {
        switch address {
        case .unix: "localhost"
        case .inet(let host, let port):
            host.isEmpty ? "localhost:\(port)" : ListenAddress.inet(host: host, port: port).description
        }
    }

    private func connect() throws -> Int32 {
        switch address {
        case .unix(let path):
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var unixAddress = sockaddr_un()
            unixAddress.sun_family = sa_family_t(AF_UNIX)
            let capacity = MemoryLayout.size(ofValue: unixAddress.sun_path)
            guard path.utf8.count < capacity else { throw Failure(description: "socket path too long: \(path)") }
            withUnsafeMutableBytes(of: &unixAddress.sun_path) { raw in
                raw.copyBytes(from: path.utf8)
                raw[path.utf8.count] = 0
            }
            let result = withUnsafePointer(to: &unixAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            guard result == 0 else {
                close(fd)
                throw Failure(
                    description: "cannot reach the admin API at \(address): \(String(cString: strerror(errno)))")
            }
            return fd
        case .inet(let host, let port):
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var list: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host.isEmpty ? "127.0.0.1" : host, String(port), &hints, &list) == 0, let first = list
            else {
                throw Failure(description: "cannot resolve \(host)")
            }
            defer { freeaddrinfo(list) }
            var entry: UnsafeMutablePointer<addrinfo>? = first
            while let info = entry {
                let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
                if fd >= 0, Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return fd }
                if fd >= 0 { close(fd) }
                entry = info.pointee.ai_next
            }
            throw Failure(description: "cannot reach the admin API at \(address): \(String(cString: strerror(errno)))")
        }
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written > 0 else { throw Failure(description: "the admin API closed the connection") }
            offset += written
        }
    }

    private func readAll(_ fd: Int32) throws -> [UInt8] {
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count == 0 { return reply }
            guard count > 0 else { throw Failure(description: "reading from the admin API failed") }
            reply += chunk[..<count]
        }
    }
}
