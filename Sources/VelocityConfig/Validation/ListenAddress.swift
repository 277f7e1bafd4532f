/// Where a socket listens: a TCP/UDP host and port, or a unix domain socket path.
public enum ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// `host` is empty for every interface.
    case inet(host: String, port: Int)
    case unix(path: String)

    /// Parses `host:port`, `[v6]:port`, `:port` and `unix:/path`.
    public init?(_ text: String) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard path.hasPrefix("/") else { return nil }
            self = .unix(path: path)
            return
        }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (1...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") {
            guard host.hasSuffix("]") else { return nil }
            host = String(host.dropFirst().dropLast())
            guard IPAddress(host)?.bytes.count == 16 else { return nil }
        } else if host.contains(":") {
            return nil
        }
        guard !host.contains(where: { $0 == " " || $0 == "/" }) else { return nil }
        self = .inet(host: host, port: port)
    }

    public var isLoopback: Bool {
        switch self {
        case .unix: true
        case .inet(let host, _): host == "localhost" || IPAddress(host)?.isLoopback == true
        }
    }

    /// Whether two TCP (or two UDP) listeners on these addresses would fight over one port.
    public func overlaps(_ other: ListenAddress) -> Bool {
        switch (self, other) {
        case (.unix(let a), .unix(let b)): a == b
        case (.inet(let hostA, let portA), .inet(let hostB, let portB)):
            portA == portB
                && (hostA == hostB || Self.isAny(hostA) || Self.isAny(hostB)
                    || (hostA == "localhost" && other.isLoopback) || (hostB == "localhost" && isLoopback))
        default: false
        }
    }

    /// Every interface: an empty host, `0.0.0.0` or `::`.
    private static func isAny(_ host: String) -> Bool {
        host.isEmpty || host == "0.0.0.0" || host == "::"
    }

    public var description: String {
        switch self {
        case .unix(let path): "unix:\(path)"
        case .inet(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }
}

extension ListenAddress {
    /// Whether the address names one place to connect to: a unix socket, or a host (not the any-interface
    /// wildcard) and port.
    /// The host when it is a name (not an IP address or a unix socket): what a certificate is checked against.
    public var hostName: String? {
        guard case .inet(let host, _) = self, IPAddress(host) == nil else { return nil }
        return host
    }

    public var isDialable: Bool {
        switch self {
        case .inet(let host, _): !host.isEmpty && host != "0.0.0.0" && host != "::"
        case .unix: true
        }
    }
}
