/// Host names as the router compares them: lowercase, without port, brackets or a trailing dot.
enum HostName {
    /// Normalizes a name written in a config (`Example.com`, `*.example.com`, `::1`, `[::1]`): it has no port,
    /// so a colon belongs to an IPv6 address.
    static func normalize(configured name: String) -> Substring {
        var host = Substring(name.lowercased())
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        if host.hasSuffix(".") { host = host.dropLast() }
        return host
    }

    /// Normalizes the authority of a request (`Example.COM:8443`, `[::1]:80`).
    static func normalize(authority: Substring) -> Substring {
        var host = authority
        if host.hasPrefix("[") {
            host = host.dropFirst().prefix(while: { $0 != "]" })
        } else if let colon = host.lastIndex(of: ":") {
            host = host[..<colon]
        }
        if host.hasSuffix(".") { host = host.dropLast() }
        guard host.utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) else { return host }
        return Substring(host.lowercased())
    }
}
