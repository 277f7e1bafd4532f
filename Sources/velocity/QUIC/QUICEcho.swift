import ArgumentParser
import Crypto
import Foundation
import NIOCore
import VelocityConfig
import VelocityQUIC

struct QUICEcho: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo",
        abstract: "Send bytes over the velocity-echo protocol and check that they come back: raw stream throughput.",
        discussion: """
            Each stream carries its share of --bytes of pseudo-random data up, and the server sends it back. \
            The SHA-256 of what went up and of what came back must match; the command fails if they do not.
            """)

    @Argument(help: "HOST:PORT of a Velocity quic listener.")
    var target: String

    @Option(help: "Bytes to send in all, split evenly over the streams.")
    var bytes = 10 << 20

    @Option(help: "Streams to echo at once, on one connection.")
    var streams = 1

    @OptionGroup var client: QUICClientOptions

    @Flag(help: "Print the result as one JSON object on stdout.")
    var json = false

    func validate() throws {
        _ = try QUICTarget(hostPort: target)
        guard bytes >= 0, streams >= 1 else { throw ValidationError("--bytes must be ≥ 0 and --streams ≥ 1") }
    }

    func run() async throws {
        let target = try QUICTarget(hostPort: target)
        let start = ContinuousClock.now
        let connection: QUICClientConnection
        do {
            var configuration = QUICClientConfiguration(
                tls: try client.tlsContext(alpn: [EchoApplication.alpn]), settings: client.settings)
            configuration.settings.maxBidirectionalStreams = 0
            connection = try await QUICClient.connect(
                host: target.host, port: target.port, serverName: client.serverName ?? target.host,
                configuration: configuration)
        } catch {
            printError("velocity: connecting to \(target.authority) failed: \(error)")
            throw ExitCode(1)
        }
        let handshake = elapsedSeconds(since: start)
        let transferStart = ContinuousClock.now
        let shares = (0..<streams).map { bytes / streams + ($0 < bytes % streams ? 1 : 0) }
        let digests: [(sent: String, received: String)]
        do {
            digests = try await withThrowingTaskGroup(of: (Int, String, String).self) { group in
                for (index, share) in shares.enumerated() {
                    group.addTask {
                        let (sent, received) = try await Self.echo(share, seed: UInt64(index + 1), on: connection)
                        return (index, sent, received)
                    }
                }
                var results = [(String, String)](repeating: ("", ""), count: streams)
                for try await (index, sent, received) in group { results[index] = (sent, received) }
                return results
            }
        } catch {
            printError("velocity: the echo failed: \(error)")
            await connection.close(errorCode: 1, reason: "")
            throw ExitCode(1)
        }
        let transfer = elapsedSeconds(since: transferStart)
        await connection.close()
        let matches = digests.allSatisfy { $0.sent == $0.received }
        let rate = Double(bytes) / max(transfer, 1e-9)
        if json {
            let document: JSONValue = [
                "bytes": .integer(Int64(bytes)), "streams": .integer(Int64(streams)), "match": .bool(matches),
                "sha256_sent": .array(digests.map { .string($0.sent) }),
                "sha256_received": .array(digests.map { .string($0.received) }),
                "handshake_ms": .double(handshake * 1000), "transfer_ms": .double(transfer * 1000),
                "megabytes_per_second": .double(rate / 1e6),
                "tls": [
                    "version": .string(connection.tls.version), "cipher": .string(connection.tls.cipher),
                    "group": .string(connection.tls.group),
                ],
            ]
            print(document.serialized())
        } else {
            print("\(connection.tls.version), \(connection.tls.cipher), group \(connection.tls.group)")
            for (index, digest) in digests.enumerated() {
                print("stream \(index): sent sha256 \(digest.sent), received sha256 \(digest.received)")
            }
            print(
                "\(bytes) bytes up and back on \(streams) stream(s): handshake \(milliseconds(handshake)), transfer "
                    + "\(milliseconds(transfer)), "
                    + String(format: "%.1f MB/s each way, %.2f Gbit/s up+down", rate / 1e6, rate * 16 / 1e9)
                    + (matches ? "; echo intact" : "; ECHO DIFFERS"))
        }
        if !matches { throw ExitCode(1) }
    }

    /// Sends `count` pseudo-random bytes on a new stream and reads the echo; returns both digests.
    private static func echo(_ count: Int, seed: UInt64, on connection: QUICClientConnection) async throws
        -> (sent: String, received: String)
    {
        let stream = try await connection.openStream()
        async let received: String = {
            var hash = SHA256()
            while let chunk = try await stream.read() {
                chunk.withUnsafeReadableBytes { hash.update(bufferPointer: $0) }
            }
            return hash.finalize().hex
        }()
        var hash = SHA256()
        var generator = PatternGenerator(seed: seed)
        var remaining = count
        while remaining > 0 {
            let chunk = generator.next(min(remaining, 64 << 10))
            chunk.withUnsafeReadableBytes { hash.update(bufferPointer: $0) }
            try await stream.write(chunk)
            remaining -= chunk.readableBytes
        }
        try await stream.finish()
        return (hash.finalize().hex, try await received)
    }
}

/// Pseudo-random bytes (xorshift64*), cheap enough not to slow the transfer it feeds.
struct PatternGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    }

    mutating func next(_ count: Int) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
            var offset = 0
            while offset < count {
                state ^= state >> 12
                state ^= state << 25
                state ^= state >> 27
                var word = (state &* 0x2545_F491_4F6C_DD1D).littleEndian
                let length = min(8, count - offset)
                withUnsafeBytes(of: &word) {
                    raw.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: length)
                }
                offset += length
            }
            return count
        }
        return buffer
    }
}

extension Digest {
    /// Lowercase hex.
    var hex: String { map { String(format: "%02x", $0) }.joined() }
}
