import Logging
import NIOCore
import NIOPosix
import Testing
import VelocityTLS

@testable import VelocityQUIC

/// ``QUICClient`` against ``QUICEndpoint`` over loopback UDP: the async stream interface, Retry through the
/// endpoints, and closing.
@Suite struct ClientEndpointTests {
    private static func server(retry: QUICEndpoint.RetryPolicy = .never) async throws -> any Channel {
        let bundle = try InMemoryLink.authority.issue(for: ["localhost"])
        let credential = try TLSCredential(
            certificateChainPEM: bundle.certificateChainPEM, privateKeyPEM: bundle.privateKeyPEM)
        let tls = try TLSServerContext(tickets: nil, alpn: [EchoApplication.alpn])
        let certificates = CertificateTable([credential])
        return try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let endpoint = QUICEndpoint(logger: Logger(label: "test"), segmentationOffload: false) {
                        QUICEndpoint.Configuration(
                            tls: tls, certificates: certificates, retry: retry,
                            makeApplication: { _ in EchoApplication() })
                    }
                    try channel.pipeline.syncOperations.addHandler(endpoint)
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    private static func configuration() throws -> QUICClientConfiguration {
        QUICClientConfiguration(
            tls: try TLSClientContext(
                alpn: [EchoApplication.alpn], verification: .roots(pem: InMemoryLink.authority.certificatePEM)))
    }

    @Test(arguments: [QUICEndpoint.RetryPolicy.never, .always])
    func echoesStreamsThroughTheAsyncInterface(retry: QUICEndpoint.RetryPolicy) async throws {
        let server = try await Self.server(retry: retry)
        let port = try #require(server.localAddress?.port)
        let connection = try await QUICClient.connect(
            host: "127.0.0.1", port: port, serverName: "localhost", configuration: try Self.configuration())
        #expect(connection.tls.group == "X25519MLKEM768" && connection.tls.alpn == EchoApplication.alpn)
        let payload = ByteBuffer(bytes: (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        try await withThrowingTaskGroup(of: Void.self) { group in
            for size in [0, 1, 5000] {
                group.addTask {
                    let stream = try await connection.openStream()
                    try await stream.write(ByteBuffer(repeating: 0x61, count: size), fin: true)
                    #expect(try await stream.readAll() == ByteBuffer(repeating: 0x61, count: size))
                }
            }
            group.addTask {
                let stream = try await connection.openStream()
                var rest = payload
                while let chunk = rest.readSlice(length: min(65536, rest.readableBytes)), chunk.readableBytes > 0 {
                    try await stream.write(chunk)
                }
                try await stream.finish()
                #expect(try await stream.readAll() == payload)
            }
            try await group.waitForAll()
        }
        #expect(await connection.updateKeys())
        let stream = try await connection.openStream()
        try await stream.write(ByteBuffer(string: "after the key update"), fin: true)
        #expect(try await stream.readAll() == ByteBuffer(string: "after the key update"))
        let reason = await connection.close(errorCode: 0, reason: "done")
        #expect(reason == .local(.init(isApplication: true, code: 0, reason: "done")))
        try await server.close()
    }

    @Test func aServerThatIsNotThereTimesOut() async throws {
        var configuration = try Self.configuration()
        configuration.settings.idleTimeout = .milliseconds(300)
        let silent = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(silent.localAddress?.port)
        await #expect(throws: QUICCloseReason.idleTimeout) {
            _ = try await QUICClient.connect(
                host: "127.0.0.1", port: port, serverName: "localhost", configuration: configuration)
        }
        try await silent.close()
    }
}
