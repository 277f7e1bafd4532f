import NIOCore
import Testing
import VelocityConfig
import VelocityTLS

@testable import VelocityQUIC

/// The client role of ``QUICConnection`` against the server role, in memory: the handshake with its checks,
/// streams both ways, loss, Retry, Version Negotiation, key update, flow control and closing.
@Suite struct ClientRoleTests {
    private static func bytes(_ count: Int, seed: UInt8 = 0) -> ByteBuffer {
        ByteBuffer(bytes: (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) })
    }

    private static func established(_ link: InMemoryLink) -> Bool {
        link.client.isHandshakeConfirmed && link.server?.state == .established
    }

    @Test func handshakeWithThePostQuantumGroupConfirmsBothSides() throws {
        let link = try InMemoryLink()
        #expect(link.run { Self.established(link) })
        let info = link.client.sessionInfo
        #expect(info.group == "X25519MLKEM768" && info.version == "TLSv1.3" && info.alpn == EchoApplication.alpn)
        #expect(link.server?.sessionInfo.group == "X25519MLKEM768")
        #expect(link.clientApplication.started)
        // The ClientHello with an ML-KEM share needs two Initial packets, each datagram padded to 1200 bytes.
        #expect(link.client.spaces[0].isDiscarded && link.client.spaces[1].isDiscarded)
        #expect(link.client.peerID == link.server?.localID)
        // The server's spare IDs arrive and their reset tokens are learnt.
        #expect(link.run { link.client.peerResetTokens.count >= 2 })
    }

    @Test func classicalGroupWhenOnlyThatIsOffered() throws {
        let link = try InMemoryLink(groups: [.x25519])
        #expect(link.run { Self.established(link) })
        #expect(link.client.sessionInfo.group == "X25519")
        #expect(!link.client.sessionInfo.isPostQuantum)
    }

    @Test func everyInitialDatagramOfTheClientIsPadded() throws {
        let link = try InMemoryLink()
        var sizes: [Int] = []
        link.drop = { toServer, _, datagram in
            if toServer, datagram.getInteger(at: 0, as: UInt8.self)! & 0xF0 == 0xC0 {
                sizes.append(datagram.readableBytes)
            }
            return false
        }
        #expect(link.run { Self.established(link) })
        #expect(!sizes.isEmpty && sizes.allSatisfy { $0 >= 1200 })
    }

    @Test func anUntrustedCertificateFailsTheHandshake() throws {
        let other = try InternalCA.create()
        let link = try InMemoryLink(verification: .roots(pem: other.certificatePEM))
        #expect(link.run { link.client.closeReason != nil })
        guard case .local(let error) = link.client.closeReason else {
            Issue.record("expected a local close, got \(String(describing: link.client.closeReason))")
            return
        }
        #expect(error.code >= 0x100 && error.code <= 0x1FF)
        #expect(error.reason.contains("certificate"))
        #expect(!link.clientApplication.started)
    }

    @Test func insecureModeAcceptsAnyCertificate() throws {
        let link = try InMemoryLink(verification: .insecure)
        #expect(link.run { Self.established(link) })
    }

    @Test func aWrongOriginalDestinationIDIsATransportParameterError() throws {
        let link = try InMemoryLink()
        link.serverOriginalID = ConnectionID.random(count: 8)
        #expect(link.run { link.client.closeReason != nil })
        guard case .local(let error) = link.client.closeReason else {
            Issue.record("expected a local close")
            return
        }
        #expect(error.code == TransportError.transportParameterError)
    }

    @Test func streamsBothWaysIncludingTheServersOwn() throws {
        let link = try InMemoryLink()
        let serverSide = RecordingApplication()
        link.serverApplication = { _ in serverSide }
        #expect(link.run { Self.established(link) })
        let first = try #require(link.client.openBidirectionalStream())
        let second = try #require(link.client.openBidirectionalStream())
        let upward = try #require(link.client.openUnidirectionalStream())
        #expect([first, second, upward] == [0, 4, 2])
        link.client.write(Self.bytes(100_000), toStream: first, fin: true)
        link.client.write(ByteBuffer(string: "second"), toStream: second, fin: true)
        link.client.write(ByteBuffer(string: "one way"), toStream: upward, fin: true)
        #expect(link.run { serverSide.finished == [0, 4, 2] })
        #expect(serverSide.received[0] == Self.bytes(100_000))
        #expect(serverSide.received[2] == ByteBuffer(string: "one way"))

        let server = try #require(link.server)
        let down = try #require(server.openUnidirectionalStream())
        #expect(down == 3)
        server.write(Self.bytes(50_000, seed: 7), toStream: down, fin: true)
        server.write(ByteBuffer(string: "answer"), toStream: second, fin: true)
        #expect(link.run { link.clientApplication.finished == [3, 4] })
        #expect(link.clientApplication.received[3] == Self.bytes(50_000, seed: 7))
        #expect(link.clientApplication.received[4] == ByteBuffer(string: "answer"))
    }

    @Test func lossOfChosenPacketsIsRecovered() throws {
        let link = try InMemoryLink()
        // The client's first datagram, the server's first two, then every seventh each way.
        link.drop = { toServer, index, _ in
            (toServer && index == 0) || (!toServer && index < 2) || index % 7 == 6
        }
        #expect(link.run { Self.established(link) })
        let id = try #require(link.client.openBidirectionalStream())
        link.client.write(Self.bytes(2_000_000), toStream: id, fin: true)
        #expect(link.run(for: .seconds(60)) { link.clientApplication.finished.contains(id) })
        #expect(link.clientApplication.received[id] == Self.bytes(2_000_000))
    }

    @Test func flowControlWindowsTurnOverManyTimes() throws {
        var small = ConnectionSettings()
        small.streamWindow = 16 << 10
        small.connectionWindow = 64 << 10
        let link = try InMemoryLink(clientSettings: small, serverSettings: small)
        #expect(link.run { Self.established(link) })
        let id = try #require(link.client.openBidirectionalStream())
        link.client.write(Self.bytes(1_000_000), toStream: id, fin: true)
        #expect(link.run(for: .seconds(60)) { link.clientApplication.finished.contains(id) })
        #expect(link.clientApplication.received[id] == Self.bytes(1_000_000))
    }

    @Test func streamLimitsOfTheServerAreKeptAndRaised() throws {
        var few = ConnectionSettings()
        few.maxBidirectionalStreams = 2
        let link = try InMemoryLink(serverSettings: few)
        #expect(link.run { Self.established(link) })
        let first = try #require(link.client.openBidirectionalStream())
        _ = try #require(link.client.openBidirectionalStream())
        #expect(link.client.openBidirectionalStream() == nil)
        link.client.write(ByteBuffer(string: "x"), toStream: first, fin: true)
        #expect(link.run { link.client.openBidirectionalStream() != nil })
    }

    @Test func retryIsFollowedAndCheckedInTheParameters() throws {
        let link = try InMemoryLink()
        let retryID = ConnectionID.random(count: 8)
        link.retry = (retryID, [1, 2, 3, 4])
        var tokens: [Int] = []
        link.drop = { toServer, _, datagram in
            if toServer, let header = try? PacketHeader.parse(datagram, at: 0, shortHeaderIDLength: 8),
                header.type == .initial
            {
                tokens.append(header.token?.readableBytes ?? 0)
            }
            return false
        }
        #expect(link.run { Self.established(link) })
        #expect(link.client.client?.retrySource == retryID)
        #expect(tokens.first == 0 && tokens.dropFirst().contains(4))
    }

    @Test func aRetryWithABadTagIsIgnored() throws {
        let link = try InMemoryLink()
        var first: PacketHeader?
        link.drop = { toServer, index, datagram in
            if toServer, index == 0 { first = try? PacketHeader.parse(datagram, at: 0, shortHeaderIDLength: 8) }
            return false
        }
        link.run { first != nil }
        let header = try #require(first)
        var retry = InMemoryLink.retryPacket(for: header, id: ConnectionID.random(count: 8), token: [9, 9])
        retry.setInteger(retry.getInteger(at: retry.writerIndex - 1, as: UInt8.self)! ^ 1, at: retry.writerIndex - 1)
        link.inject(retry)
        #expect(link.client.client?.retrySource == nil)
        #expect(link.run { Self.established(link) })
    }

    @Test func versionNegotiationWithoutVersionOneEndsTheAttempt() throws {
        let link = try InMemoryLink()
        var header: PacketHeader?
        link.drop = { toServer, _, datagram in
            if toServer, header == nil { header = try? PacketHeader.parse(datagram, at: 0, shortHeaderIDLength: 8) }
            return true
        }
        link.run(for: .milliseconds(1)) { header != nil }
        let initial = try #require(header)
        func negotiation(_ versions: [UInt32]) -> ByteBuffer {
            var packet = ByteBuffer(bytes: [0x80, 0, 0, 0, 0, UInt8(initial.source.count)] + initial.source.bytes)
            packet.writeInteger(UInt8(initial.destination.count))
            packet.writeConnectionID(initial.destination)
            for version in versions { packet.writeInteger(version) }
            return packet
        }
        link.inject(negotiation([0xff00_001d, 1]))
        #expect(link.client.closeReason == nil)
        link.inject(negotiation([0xff00_001d, 0x6b33_43cf]))
        #expect(link.client.closeReason == .versionNegotiation([0xff00_001d, 0x6b33_43cf]))
    }

    @Test func keyUpdatesStartedByTheClientAreFollowed() throws {
        let link = try InMemoryLink()
        #expect(link.run { Self.established(link) })
        #expect(!link.client.initiateKeyUpdate())  // nothing acknowledged under the current keys yet
        for round in 0..<3 {
            let id = try #require(link.client.openBidirectionalStream())
            link.client.write(Self.bytes(30_000, seed: UInt8(round)), toStream: id, fin: true)
            #expect(link.run { link.clientApplication.finished.contains(id) })
            #expect(link.clientApplication.received[id] == Self.bytes(30_000, seed: UInt8(round)))
            #expect(link.client.initiateKeyUpdate())
            #expect(!link.client.initiateKeyUpdate())  // not again before the server follows
        }
        let id = try #require(link.client.openBidirectionalStream())
        link.client.write(ByteBuffer(string: "after"), toStream: id, fin: true)
        #expect(link.run { link.clientApplication.finished.contains(id) })
        #expect(link.client.keyPhase == link.server?.keyPhase)
        #expect(link.client.closeReason == nil && link.server?.closeReason == nil)
    }

    @Test func closingTellsThePeerTheApplicationsCode() throws {
        let link = try InMemoryLink()
        #expect(link.run { Self.established(link) })
        link.client.close(errorCode: 0x42, reason: "done")
        #expect(link.run { link.server?.closeReason != nil })
        guard case .peer(let error) = link.server?.closeReason else {
            Issue.record("expected the server to hear the close")
            return
        }
        #expect(error.isApplication && error.code == 0x42 && error.reason == "done")
        #expect(link.clientApplication.closed)
    }
}
