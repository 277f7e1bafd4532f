import Crypto
import Foundation
import VelocityConfig

enum Digest {
    static func sha256Hex(_ bytes: some DataProtocol) -> String {
        SHA256.hash(data: bytes).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    static func sha256Hex(_ document: JSONValue) -> String {
        sha256Hex(document.serializedBytes)
    }
}
