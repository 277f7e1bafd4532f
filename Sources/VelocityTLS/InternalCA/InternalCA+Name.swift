import SwiftASN1
import X509

#if canImport(Darwin)
    import Darwin
#elseif canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension InternalCA {
    /// One name a certificate covers, checked and put in the form it takes in the certificate.
    enum Name: Hashable, Sendable {
        /// A lowercase DNS name without a trailing dot; its first label may be a `*` wildcard.
        case dns(String)
        /// An IPv4 (4 bytes) or IPv6 (16 bytes) address in network order.
        case ip([UInt8])

        /// RFC 1035 §2.3.4 limits.
        private static let maximumNameLength = 253
        private static let maximumLabelLength = 63

        init(_ text: String) throws(InternalCAError) {
            if let address = Self.addressBytes(text) {
                self = .ip(address)
                return
            }
            if text.contains(":") {
                throw .invalidName(text, reason: "it is not a valid IPv6 address")
            }
            self = .dns(try Self.checkedDNSName(text))
        }

        /// The name as text: what `CertificateBundle.names` lists and what a subject common name holds.
        var text: String {
            switch self {
            case .dns(let name): name
            case .ip(let bytes): Self.addressText(bytes)
            }
        }

        var generalName: GeneralName {
            switch self {
            case .dns(let name): .dnsName(name)
            case .ip(let bytes): .ipAddress(ASN1OctetString(contentBytes: bytes[...]))
            }
        }

        /// Names no public CA can vouch for: loopback, reserved private-use names (RFC 6761 `.localhost`, ICANN's
        /// `.internal`) and bare addresses.
        var isPrivateUse: Bool {
            switch self {
            case .ip: true
            case .dns(let name): name == "localhost" || name.hasSuffix(".localhost") || name.hasSuffix(".internal")
            }
        }

        private static func checkedDNSName(_ text: String) throws(InternalCAError) -> String {
            // Checked before lowercasing, which can turn a non-ASCII letter (the Kelvin sign) into an ASCII one.
            guard text.allSatisfy(\.isASCII) else {
                throw .invalidName(text, reason: "non-ASCII names must be given in their punycode (xn--) form")
            }
            var name = text.lowercased()
            if name.hasSuffix(".") {
                name.removeLast()
            }
            guard !name.isEmpty, name.utf8.count <= maximumNameLength else {
                throw .invalidName(text, reason: "a DNS name has 1 to \(maximumNameLength) characters")
            }
            let labels = name.split(separator: ".", omittingEmptySubsequences: false)
            for (index, label) in labels.enumerated() {
                if index == 0 && label == "*" {
                    guard labels.count > 1 else {
                        throw .invalidName(text, reason: "a wildcard needs a name after \"*.\"")
                    }
                    continue
                }
                if label.contains("*") {
                    throw .invalidName(text, reason: "a wildcard may only be the whole first label (\"*.example\")")
                }
                guard !label.isEmpty, label.utf8.count <= maximumLabelLength else {
                    throw .invalidName(text, reason: "each label has 1 to \(maximumLabelLength) characters")
                }
                guard label.utf8.allSatisfy(Self.isLetterDigitOrHyphen), label.first != "-", label.last != "-" else {
                    throw .invalidName(
                        text,
                        reason: "labels hold only letters, digits and inner hyphens"
                    )
                }
            }
            // No top-level domain is numeric, so this is a mistyped IPv4 address such as "10.0.0.256".
            if let last = labels.last, last.utf8.allSatisfy(Self.isDigit) {
                throw .invalidName(text, reason: "it is not a valid IPv4 address")
            }
            return name
        }

        private static func isDigit(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        }

        private static func isLetterDigitOrHyphen(_ byte: UInt8) -> Bool {
            isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || byte == UInt8(ascii: "-")
        }

        /// The address in network order, or nil when `text` is not a complete IPv4 or IPv6 address.
        private static func addressBytes(_ text: String) -> [UInt8]? {
            var v4 = in_addr()
            if inet_pton(AF_INET, text, &v4) == 1 {
                return withUnsafeBytes(of: v4) { Array($0) }
            }
            var v6 = in6_addr()
            if inet_pton(AF_INET6, text, &v6) == 1 {
                return withUnsafeBytes(of: v6) { Array($0) }
            }
            return nil
        }

        /// The canonical text (RFC 5952 for IPv6), so that "0:0::1" and "::1" are listed alike.
        private static func addressText(_ bytes: [UInt8]) -> String {
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            let family = bytes.count == 4 ? AF_INET : AF_INET6
            _ = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }
}
