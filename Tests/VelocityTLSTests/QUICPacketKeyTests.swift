import Testing

@testable import VelocityTLS

/// The packet-protection examples of RFC 9001 Appendix A.
@Suite struct QUICPacketKeyTests {
    private func bytes(_ hex: String) -> [UInt8] {
        var result: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            result.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return result
    }

    @Test func initialKeysMaskTheClientHeaderAsTheRFCShows() {
        let keys = QUICInitialKeys.derive(destinationConnectionID: bytes("8394c8f03e515708"))
        let mask = bytes("d1b1c98dd7689fb8ec11d242b123dc9b").withUnsafeBytes { keys.client.headerMask(sample: $0) }
        #expect([mask.0, mask.1, mask.2, mask.3, mask.4] == bytes("437b9aec36"))
    }

    @Test func initialKeysOfBothSidesDiffer() {
        let keys = QUICInitialKeys.derive(destinationConnectionID: bytes("8394c8f03e515708"))
        var payload: [UInt8] = [1, 2, 3]
        var tag = [UInt8](repeating: 0, count: QUICPacketKey.tagLength)
        let header = bytes("c300000001")
        header.withUnsafeBytes { header in
            payload.withUnsafeMutableBytes { payload in
                tag.withUnsafeMutableBytes {
                    keys.server.seal(packetNumber: 1, header: header, payload: payload, tag: $0)
                }
            }
        }
        var sealed = payload + tag
        let opened = header.withUnsafeBytes { header in
            sealed.withUnsafeMutableBytes { keys.client.open(packetNumber: 1, header: header, ciphertext: $0) }
        }
        #expect(opened == nil)
    }

    @Test func chachaShortHeaderPacketMatchesTheRFC() {
        let key = QUICPacketKey(
            suite: .chacha20Poly1305, secret: bytes("9ac312a7f877468ebe69422748ad00a15443f18203a07d6060f688f30f21632b"))
        let header = bytes("4200bff4")
        var payload: [UInt8] = [0x01]
        var tag = [UInt8](repeating: 0, count: QUICPacketKey.tagLength)
        header.withUnsafeBytes { header in
            payload.withUnsafeMutableBytes { payload in
                tag.withUnsafeMutableBytes {
                    key.seal(packetNumber: 654_360_564, header: header, payload: payload, tag: $0)
                }
            }
        }
        #expect(payload + tag == bytes("655e5cd55c41f69080575d7999c25a5bfb"))
        let mask = tag.withUnsafeBytes { key.headerMask(sample: $0) }
        #expect([mask.0, mask.1, mask.2, mask.3, mask.4] == bytes("aefefe7d03"))

        var sealed = payload + tag
        let length = header.withUnsafeBytes { header in
            sealed.withUnsafeMutableBytes { key.open(packetNumber: 654_360_564, header: header, ciphertext: $0) }
        }
        #expect(length == 1 && sealed[0] == 0x01)
        sealed = payload + tag
        sealed[3] ^= 1
        let tampered = header.withUnsafeBytes { header in
            sealed.withUnsafeMutableBytes { key.open(packetNumber: 654_360_564, header: header, ciphertext: $0) }
        }
        #expect(tampered == nil)
    }

    @Test func keyUpdateChangesThePacketKeyButNotHeaderProtection() {
        let key = QUICPacketKey(
            suite: .chacha20Poly1305, secret: bytes("9ac312a7f877468ebe69422748ad00a15443f18203a07d6060f688f30f21632b"))
        let next = key.nextGeneration()
        let sample = bytes("5e5cd55c41f69080575d7999c25a5bfb")
        let before = sample.withUnsafeBytes { key.headerMask(sample: $0) }
        let after = sample.withUnsafeBytes { next.headerMask(sample: $0) }
        #expect(before == after)
        var payload: [UInt8] = [0x01]
        var tag = [UInt8](repeating: 0, count: QUICPacketKey.tagLength)
        [0x42, 0x00].withUnsafeBytes { header in
            payload.withUnsafeMutableBytes { payload in
                tag.withUnsafeMutableBytes { next.seal(packetNumber: 1, header: header, payload: payload, tag: $0) }
            }
        }
        var sealed = payload + tag
        let opened = [0x42, 0x00].withUnsafeBytes { header in
            sealed.withUnsafeMutableBytes { key.open(packetNumber: 1, header: header, ciphertext: $0) }
        }
        #expect(opened == nil)
    }

    @Test func retryIntegrityTagMatchesTheRFC() {
        // RFC 9001 Appendix A.4: a Retry answering the Initial sent to 8394c8f03e515708.
        let retry = bytes("ff000000010008f067a5502a4262b5746f6b656e")
        let tag = QUICRetryIntegrity.tag(pseudoPacket: [8] + bytes("8394c8f03e515708") + retry)
        #expect(tag == bytes("04a265ba2eff4d829058fb3f0f2496ba"))
    }

    @Test func tokensOpenOnlyForTheirContextAndUnaltered() {
        let key = QUICTokenKey()
        let token = key.seal([1, 2, 3], context: Array("127.0.0.1".utf8))
        #expect(key.open(token, context: Array("127.0.0.1".utf8)) == [1, 2, 3])
        #expect(key.open(token, context: Array("127.0.0.2".utf8)) == nil)
        var altered = token
        altered[altered.count - 1] ^= 1
        #expect(key.open(altered, context: Array("127.0.0.1".utf8)) == nil)
        #expect(QUICTokenKey().open(token, context: Array("127.0.0.1".utf8)) == nil)
        #expect(key.open(Array(token.prefix(10)), context: []) == nil)
    }
}
