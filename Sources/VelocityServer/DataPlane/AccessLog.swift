import Logging
import NIOCore
import NIOHTTP1
import VelocityTLS

/// One line per data-plane request when `logging.access_log` is on: enough to see who asked for what, how it
/// went, and how much traffic is post-quantum (`tls_group`).
enum AccessLog {
    private static let logger = Logger(label: "velocity.access")

    static func record(
        head: HTTPRequestHead,
        status: Int,
        bytesOut: Int,
        started: NIODeadline,
        remote: SocketAddress?,
        tls: TLSSessionInfo?,
        upstream: (address: String, latency: TimeAmount?)? = nil
    ) {
        var metadata: Logger.Metadata = [
            "remote": "\(remote?.ipAddress ?? "")",
            "host": "\(head.headers.first(name: "host") ?? "")",
            "method": "\(head.method.rawValue)",
            "uri": "\(head.uri)",
            "proto": "\(head.version.major >= 2 ? "HTTP/\(head.version.major)" : "HTTP/1.\(head.version.minor)")",
            "status": "\(status)",
            "bytes_out": "\(bytesOut)",
            "duration_ms": "\(Double((NIODeadline.now() - started).nanoseconds) / 1_000_000)",
        ]
        if let tls {
            metadata["tls_version"] = "\(tls.version)"
            metadata["tls_cipher"] = "\(tls.cipher)"
            metadata["tls_group"] = "\(tls.group)"
            metadata["tls_resumed"] = "\(tls.resumed)"
            metadata["tls_post_quantum"] = "\(tls.isPostQuantum)"
            if let name = tls.serverName { metadata["tls_server_name"] = "\(name)" }
        }
        if let upstream {
            metadata["upstream"] = "\(upstream.address)"
            if let latency = upstream.latency {
                metadata["upstream_latency_ms"] = "\(Double(latency.nanoseconds) / 1_000_000)"
            }
        }
        logger.info("request", metadata: metadata)
    }
}
