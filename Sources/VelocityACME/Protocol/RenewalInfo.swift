import Foundation
import VelocityConfig
import X509

/// ACME Renewal Information (RFC 9773): the window in which the CA wants a certificate renewed. It can move,
/// earlier than the usual schedule when the CA must revoke, so it is asked again as the CA's Retry-After says.
struct RenewalInfo: Decodable, Sendable, Equatable {
    struct Window: Decodable, Sendable, Equatable {
        var start: Date
        var end: Date
    }

    var suggestedWindow: Window

    /// §4.1: the key identifier of the certificate's authority key identifier extension and its serial number
    /// (the DER integer's content octets), each base64url, joined by a dot. Nil without the extension.
    static func certificateID(of certificate: Certificate) -> String? {
        guard let identifier = (try? certificate.extensions.authorityKeyIdentifier)??.keyIdentifier else {
            return nil
        }
        // swift-certificates keeps the serial without the sign octet; DER needs one before a high bit.
        var serial = Array(certificate.serialNumber.bytes.drop { $0 == 0 })
        if serial.first.map({ $0 & 0x80 != 0 }) ?? true { serial.insert(0, at: 0) }
        return Base64.encodeURLSafe(Array(identifier)) + "." + Base64.encodeURLSafe(serial)
    }

    /// A moment in the window, uniformly at random as §4.2 asks, so that the CA's load spreads.
    static func moment(in window: Window, random: Double = .random(in: 0..<1)) -> Date {
        window.start + max(0, window.end.timeIntervalSince(window.start)) * random
    }
}

extension JSONDecoder {
    /// ACME's timestamps are RFC 3339, with or without fractional seconds.
    static var acme: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            let format = ISO8601DateFormatter()
            format.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            if let date = format.date(from: text) { return date }
            format.formatOptions = [.withInternetDateTime]
            if let date = format.date(from: text) { return date }
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not RFC 3339"))
        }
        return decoder
    }
}
