import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import VelocityConfig
import VelocityHTTP3
import VelocityQUIC
import VelocityTLS

struct QUICGet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Fetch a URL over HTTP/3 and show the response and what the handshake negotiated.",
        discussion: """
            The body goes to stdout (or --output); the status, TLS parameters and timing go to stderr, with the \
            headers too under -v. --json prints all of that as one JSON object on stdout instead.
            """)

    @Argument(help: "https://host[:port]/path")
    var url: String

    @OptionGroup var client: QUICClientOptions

    @Option(name: .shortAndLong, help: "Write the body to this file.")
    var output: String?

    @Option(name: [.customShort("X"), .long], help: "The request method.")
    var method = "GET"

    @Option(name: [.customShort("H"), .long], help: "An extra request header, \"Name: value\" (repeatable).")
    var header: [String] = []

    @Option(help: "Send this text as the request body.")
    var data: String?

    @Flag(help: "Print status, headers, TLS parameters and timing as one JSON object on stdout.")
    var json = false

    @Flag(name: .shortAndLong, help: "Also print the request and the response headers.")
    var verbose = false

    func validate() throws {
        _ = try QUICTarget(url: url)
        for line in header where !line.contains(":") { throw ValidationError("header \"\(line)\" has no colon") }
    }

    func run() async throws {
        let target = try QUICTarget(url: url)
        var head = HTTPRequestHead(
            version: .init(major: 3, minor: 0), method: HTTPMethod(rawValue: method), uri: target.path)
        head.headers.add(name: "host", value: target.authority)
        head.headers.add(name: "user-agent", value: "velocity/\(Velocity.version)")
        for line in header {
            let colon = line.firstIndex(of: ":")!
            head.headers.add(
                name: line[..<colon].trimmingCharacters(in: .whitespaces),
                value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let sink =
            try output.map { path in
                // open(2) rather than FileManager, which would replace a device such as /dev/null with a file.
                let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                guard descriptor >= 0 else { throw ValidationError("cannot write \(path)") }
                return FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
            } ?? (json ? nil : FileHandle.standardOutput)

        let start = ContinuousClock.now
        let connection: HTTP3Client
        do {
            connection = try await HTTP3Client.connect(
                host: target.host, port: target.port, serverName: client.serverName ?? target.host,
                tls: try client.tlsContext(alpn: [HTTP3ClientConnection.alpn]), settings: client.settings)
        } catch {
            printError("velocity: connecting to \(target.host):\(target.port) failed: \(error)")
            throw ExitCode(1)
        }
        let handshake = elapsedSeconds(since: start)
        if verbose, !json {
            printError("> \(head.method.rawValue) \(head.uri) HTTP/3")
            for (name, value) in head.headers { printError("> \(name.lowercased()): \(value)") }
        }
        let requestStart = ContinuousClock.now
        let firstByte = FirstByte()
        let response: HTTP3Client.Response
        do {
            response = try await connection.request(
                head, body: data.map { ByteBuffer(string: $0) },
                onHead: { _ in firstByte.mark(since: requestStart) },
                onBody: { bytes in sink?.write(Data(bytes.readableBytesView)) })
        } catch {
            printError("velocity: the request failed: \(error)")
            try? await connection.close()
            throw ExitCode(1)
        }
        let total = elapsedSeconds(since: requestStart)
        try? sink?.synchronize()
        try? await connection.close()
        report(response, tls: connection.tls, handshake: handshake, firstByte: firstByte.seconds, total: total)
    }

    private func report(
        _ response: HTTP3Client.Response, tls: TLSSessionInfo, handshake: Double, firstByte: Double, total: Double
    ) {
        let rate = Double(response.bodyLength) / max(total, 1e-9) / 1e6
        if json {
            let headers = response.head.headers.map { JSONValue.array([.string($0.name), .string($0.value)]) }
            let document: JSONValue = [
                "status": .integer(Int64(response.head.status.code)),
                "headers": .array(headers),
                "trailers": .array((response.trailers ?? [:]).map { .array([.string($0.name), .string($0.value)]) }),
                "body_bytes": .integer(Int64(response.bodyLength)),
                "tls": [
                    "version": .string(tls.version), "cipher": .string(tls.cipher), "group": .string(tls.group),
                    "alpn": .string(tls.alpn ?? ""), "server_name": .string(tls.serverName ?? ""),
                ],
                "timing_ms": [
                    "handshake": .double(handshake * 1000), "first_byte": .double(firstByte * 1000),
                    "total": .double(total * 1000),
                ],
            ]
            print(document.serialized())
            return
        }
        printError("< HTTP/3 \(response.head.status.code)")
        if verbose {
            for (name, value) in response.head.headers { printError("< \(name): \(value)") }
            for (name, value) in response.trailers ?? [:] { printError("< (trailer) \(name): \(value)") }
        }
        printError(
            "* \(tls.version), \(tls.cipher), group \(tls.group), ALPN \(tls.alpn ?? "none")"
                + (tls.serverName.map { ", server name \($0)" } ?? ""))
        printError(
            "* handshake \(milliseconds(handshake)), first byte \(milliseconds(firstByte)), "
                + "total \(milliseconds(total)), \(response.bodyLength) bytes"
                + (response.bodyLength >= 1 << 20 ? String(format: " (%.1f MB/s)", rate) : ""))
    }
}

/// When the response head arrived, set from the event loop and read after the request.
private final class FirstByte: Sendable {
    private let value = Mutex(0.0)

    func mark(since start: ContinuousClock.Instant) {
        let elapsed = elapsedSeconds(since: start)
        value.withLock { $0 = elapsed }
    }

    var seconds: Double { value.withLock { $0 } }
}
