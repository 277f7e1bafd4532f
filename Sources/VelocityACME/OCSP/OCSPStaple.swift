import Crypto
import Foundation
import SwiftASN1

/// A verified "good" OCSP response for one certificate, as stapled to handshakes and kept in the store
/// (namespace `ocsp`, by name).
public struct OCSPStaple: Codable, Sendable, Equatable {
    /// The DER response, stapled as is.
    public var response: Data
    /// Lowercase hex SHA-256 of the leaf it answers for: a staple never outlives its certificate.
    public var certificate: String
    public var thisUpdate: Date
    public var nextUpdate: Date?

    enum CodingKeys: String, CodingKey {
        case response, certificate
        case thisUpdate = "this_update"
        case nextUpdate = "next_update"
    }

    /// Without a nextUpdate the response is taken to be good for a day.
    static let assumedValidity: TimeInterval = 86400

    /// The end of the response's validity.
    public var expiry: Date {
        nextUpdate ?? thisUpdate + Self.assumedValidity
    }

    /// Half way through the validity, when a fresh response is fetched.
    var refreshTime: Date {
        thisUpdate + expiry.timeIntervalSince(thisUpdate) / 2
    }

    public func isUsable(for leafDER: [UInt8], at now: Date) -> Bool {
        certificate == Self.fingerprint(leafDER) && expiry > now
    }

    static func fingerprint(_ der: [UInt8]) -> String {
        SHA256.hash(data: der).map { String(format: "%02x", $0) }.joined()
    }

    /// Reads thisUpdate and nextUpdate of the first SingleResponse (RFC 6960 §4.2.1); the verifier has already
    /// checked that it answers for the certificate and says good.
    init(response: [UInt8], leafDER: [UInt8]) throws {
        let root = try DER.parse(response[...])
        // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT ResponseBytes }
        let bytes = try Self.child(root, 1, tagged: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific))
        // ResponseBytes ::= SEQUENCE { responseType OID, response OCTET STRING (a BasicOCSPResponse) }
        let basic = try DER.parse(try ASN1OctetString(derEncoded: try Self.child(try Self.only(bytes), 1)).bytes)
        // BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, ... }; ResponseData ::= SEQUENCE {
        // version [0] EXPLICIT OPTIONAL, responderID, producedAt, responses SEQUENCE OF SingleResponse, ... }
        // The responderID is a context-tagged choice, so `responses` is the only universal SEQUENCE in it.
        let data = try Self.child(basic, 0)
        guard let responses = Self.children(data).first(where: { $0.identifier == .sequence }),
            let single = Self.children(responses).first
        else { throw OCSPStapleError.malformed }
        // SingleResponse ::= SEQUENCE { certID, certStatus, thisUpdate GeneralizedTime,
        //                               nextUpdate [0] EXPLICIT GeneralizedTime OPTIONAL, ... }
        let parts = Self.children(single)
        guard parts.count >= 3 else { throw OCSPStapleError.malformed }
        thisUpdate = try Self.date(try GeneralizedTime(derEncoded: parts[2]))
        if parts.count > 3, parts[3].identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
            nextUpdate = try Self.date(try GeneralizedTime(derEncoded: try Self.only(parts[3])))
        }
        self.response = Data(response)
        certificate = Self.fingerprint(leafDER)
    }

    private static func date(_ time: GeneralizedTime) throws -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        let components = DateComponents(
            year: time.year, month: time.month, day: time.day, hour: time.hours, minute: time.minutes,
            second: time.seconds)
        guard let date = calendar.date(from: components) else { throw OCSPStapleError.malformed }
        return date + time.fractionalSeconds
    }

    private static func children(_ node: ASN1Node) -> [ASN1Node] {
        guard case .constructed(let nodes) = node.content else { return [] }
        return Array(nodes)
    }

    private static func child(_ node: ASN1Node, _ index: Int, tagged: ASN1Identifier? = nil) throws -> ASN1Node {
        let nodes = children(node)
        guard index < nodes.count, tagged.map({ nodes[index].identifier == $0 }) ?? true else {
            throw OCSPStapleError.malformed
        }
        return nodes[index]
    }

    private static func only(_ node: ASN1Node) throws -> ASN1Node {
        try child(node, 0)
    }
}

enum OCSPStapleError: Error, CustomStringConvertible {
    case malformed

    var description: String { "the OCSP response does not have RFC 6960's shape" }
}
