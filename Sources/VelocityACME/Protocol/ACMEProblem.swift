/// A problem document (RFC 7807) as ACME servers send them (RFC 8555 §6.7), with subproblems per identifier.
public struct ACMEProblem: Decodable, Sendable, Equatable, CustomStringConvertible {
    /// A URI; ACME's own are `urn:ietf:params:acme:error:<name>`.
    public var type: String?
    public var detail: String?
    public var status: Int?
    public var subproblems: [Subproblem]?

    public struct Subproblem: Decodable, Sendable, Equatable {
        public var type: String?
        public var detail: String?
        public var identifier: Identifier?

        public struct Identifier: Decodable, Sendable, Equatable {
            public var type: String
            public var value: String
        }
    }

    static let acmePrefix = "urn:ietf:params:acme:error:"

    /// The ACME error name (`badNonce`, `rateLimited`, …), nil for other problem types.
    public var acmeError: String? {
        guard let type, type.hasPrefix(Self.acmePrefix) else { return nil }
        return String(type.dropFirst(Self.acmePrefix.count))
    }

    /// One line: the CA's detail, the error name, and each subproblem's identifier and detail.
    public var description: String {
        var text = detail ?? "no detail"
        if let name = acmeError ?? type { text += " (\(name))" }
        for problem in subproblems ?? [] {
            let name = problem.identifier.map { "\($0.value)" } ?? "?"
            text += "; \(name): \(problem.detail ?? "no detail")"
        }
        return text
    }
}
