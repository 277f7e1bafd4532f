import Foundation
import VelocityACME
import VelocityConfig
import VelocityTLS

/// Which site hosts get their certificates from where, by `tls.automation.policies`. A host's policies are
/// those whose subjects cover it, in config order: while they are `acme`, each is an issuer to fall back to;
/// the first `internal` one ends the list, and a host whose first policy is `internal` gets the internal CA.
/// Hosts with a configured certificate, hosts of sites marked `tls.internal`, and names no public CA
/// certifies (IP addresses, `localhost`, `*.internal`, wildcards, which need DNS-01) are not managed.
struct AutomationPlan {
    /// Names an ACME CA certifies, with their issuers in order.
    var acme: [ManagedName] = []
    /// Names the policies give to the internal CA.
    var internalNames: [String] = []

    init(config: VelocityConfig, configured: CertificateTable) throws(ConfigError) {
        let policies = config.tls?.automation?.policies ?? []
        guard !policies.isEmpty else { return }
        var issuers: [Int: ACMEIssuerSettings] = [:]
        for (index, policy) in policies.enumerated() where policy.issuer == .acme {
            issuers[index] = try Self.settings(policy, at: index, listeners: config.listeners ?? [])
        }
        var seen = Set<String>()
        for site in config.sites ?? [] where site.tls?.internal != true {
            for host in (site.hosts ?? []).map({ $0.lowercased() }) where seen.insert(host).inserted {
                guard !configured.covers(Substring(host)), !host.hasPrefix("*."),
                    !InternalCA.coversAutomatically(host)
                else { continue }
                let covering = policies.indices.filter { Self.covers(policies[$0].subjects, host) }
                guard let first = covering.first else { continue }
                if policies[first].issuer == .internal {
                    internalNames.append(host)
                    continue
                }
                let chain = covering.prefix { policies[$0].issuer == .acme }.compactMap { issuers[$0] }
                let usable = chain.filter { !$0.challenges.isEmpty }
                acme.append(
                    ManagedName(
                        name: host, issuers: usable,
                        problem: usable.isEmpty
                            ? "no listener where the CA connects: http-01 needs an http listener on port 80 and "
                                + "tls-alpn-01 an https listener on port 443 (or set challenges.*.alternate_port)"
                            : nil))
            }
        }
    }

    /// A subject list covers a name exactly, or by a `*.` wildcard for one label; no list covers every name.
    static func covers(_ subjects: [String]?, _ name: String) -> Bool {
        guard let subjects else { return true }
        return subjects.contains { subject in
            let subject = subject.lowercased()
            if subject == name { return true }
            guard subject.hasPrefix("*."), let dot = name.firstIndex(of: ".") else { return false }
            return name[name.index(after: dot)...] == subject.dropFirst(2)
        }
    }

    private static func settings(
        _ policy: AutomationPolicy, at index: Int, listeners: [ListenerConfig]
    ) throws(ConfigError) -> ACMEIssuerSettings {
        let pointer = JSONPointer(tokens: ["tls", "automation", "policies", String(index)])
        var roots: String?
        if let file = policy.trustedRootsFile {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ConfigError(at: pointer.appending("trusted_roots_file"), "cannot read \(file)")
            }
            roots = String(decoding: data, as: UTF8.self)
        }
        func listens(_ transport: ListenerConfig.TransportProtocol, on port: Int) -> Bool {
            listeners.contains { listener in
                guard listener.protocol == transport, case .inet(_, let bound)? = ListenAddress(listener.address) else {
                    return false
                }
                return bound == port
            }
        }
        var challenges: [ChallengeType] = []
        let http = policy.challenges?.http01
        if http?.enabled != false, listens(.http, on: http?.alternatePort ?? 80) { challenges.append(.http01) }
        let alpn = policy.challenges?.tlsALPN01
        if alpn?.enabled != false, listens(.https, on: alpn?.alternatePort ?? 443) { challenges.append(.tlsALPN01) }
        return ACMEIssuerSettings(
            directoryURL: policy.ca ?? AutomationPolicy.defaultCA, email: policy.email,
            externalAccount: policy.externalAccount.flatMap { account in
                Base64.decodeURLSafe(account.macKey).map {
                    ACMEIssuerSettings.ExternalAccount(keyID: account.keyID, macKey: $0)
                }
            },
            challenges: challenges, keyType: policy.keyType ?? .p256, trustedRootsPEM: roots)
    }
}
