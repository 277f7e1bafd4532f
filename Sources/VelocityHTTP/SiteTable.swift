/// Finds the site for a host without scanning sites: one hash lookup for the exact name, one for the
/// wildcard covering its first label (`*.example.com` covers `a.example.com`, not `a.b.example.com`), then the
/// site that claims no hosts.
struct SiteTable: Sendable {
    private var exact: [Substring: Int] = [:]
    private var wildcard: [Substring: Int] = [:]
    private var fallback: Int?

    init(hosts: [[String]]) {
        for (index, names) in hosts.enumerated() {
            if names.isEmpty { fallback = index }
            for name in names {
                let normalized = HostName.normalize(configured: name)
                if normalized.hasPrefix("*.") {
                    wildcard[normalized.dropFirst(2)] = index
                } else {
                    exact[normalized] = index
                }
            }
        }
    }

    func lookup(_ host: Substring) -> Int? {
        if let index = exact[host] { return index }
        if let dot = host.utf8.firstIndex(of: UInt8(ascii: ".")),
            let index = wildcard[host[host.utf8.index(after: dot)...]]
        {
            return index
        }
        return fallback
    }
}
