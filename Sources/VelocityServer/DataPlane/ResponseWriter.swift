import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOPosix
import VelocityConfig
import VelocityHTTP

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A response as the data plane sends it: complete in memory, or a file range read as it goes out.
enum Reply {
    case buffered(StaticResponse)
    /// The body is nil for HEAD; `length` is what a GET would send.
    case file(StaticResponse, FileBody?, length: Int)

    var status: HTTPResponse.Status {
        switch self {
        case .buffered(let response), .file(let response, _, _): response.status
        }
    }
}

/// Writes one reply in HTTP/1 parts (which NIO's codec turns into HTTP/2 frames on a stream): the head with
/// its framing headers, then the body, compressed if an `encode` handler asked for it and the response
/// qualifies.
struct ResponseWriter {
    let head: HTTPRequestHead
    let encoding: EncodeRule?
    let requestFields: HTTPFields
    let zeroCopy: Bool

    /// Calls `done` with the status and body bytes sent once the last part is written or the write failed.
    func write(_ reply: Reply, context: ChannelHandlerContext, done: @escaping (Int, Int) -> Void) {
        let sendsBody = head.method != .HEAD
        switch reply {
        case .buffered(var response):
            if let coding = chosenEncoding(response, length: response.body.readableBytes) {
                let compressor = Compressor(coding)
                var compressed = ByteBuffer()
                compressor.compress(response.body, into: &compressed, finish: true)
                response.body = compressed
                EncodeRule.markEncoded(&response.headerFields, coding)
            }
            let length = response.body.readableBytes
            let close = writeHead(response, contentLength: length, context: context)
            if sendsBody, length > 0 {
                context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(response.body))), promise: nil)
            }
            let sent = sendsBody ? length : 0
            // A small response is on its way once written (a socket buffer holds it); a large one counts as
            // being written, for the connection's timers, until the socket has taken all of it.
            if sent <= Self.smallResponse {
                end(context: context, close: close)
                done(response.status.code, sent)
            } else {
                end(context: context, close: close) { done(response.status.code, sent) }
            }
        case .file(var response, let body, let length):
            let coding = chosenEncoding(response, length: length)
            if let coding { EncodeRule.markEncoded(&response.headerFields, coding) }
            let close = writeHead(response, contentLength: coding == nil ? length : nil, context: context)
            guard sendsBody, let body else {
                end(context: context, close: close)
                done(response.status.code, 0)
                return
            }
            if zeroCopy, coding == nil {
                // The descriptor is duplicated so that NIO's handle can own and close its copy.
                let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: dup(body.file.descriptor))
                let region = FileRegion(fileHandle: handle, readerIndex: body.offset, endIndex: body.offset + length)
                context.write(NIOAny(HTTPServerResponsePart.body(.fileRegion(region)))).whenComplete { _ in
                    try? handle.close()
                }
                end(context: context, close: close) { done(response.status.code, length) }
                return
            }
            let status = response.status.code
            FileStreamer(context: context, body: body, compressor: coding.map(Compressor.init)) { sent, completed in
                if completed {
                    end(context: context, close: close)
                } else {
                    context.close(promise: nil)
                }
                done(status, sent)
            }.start()
        }
    }

    private func chosenEncoding(_ response: StaticResponse, length: Int) -> ContentEncoding? {
        encoding?.encoding(
            request: requestFields, status: response.status, response: response.headerFields, length: length)
    }

    /// Writes the head; returns whether the connection closes after this response. Without a length, an
    /// HTTP/1.1 body is chunked and an HTTP/1.0 one ends with the connection.
    private func writeHead(_ response: StaticResponse, contentLength: Int?, context: ChannelHandlerContext) -> Bool {
        var headers = HTTPHeaders(response.headerFields, reservingExtra: 2)
        let code = response.status.code
        // 1xx, 204 and 304 carry no body, so no length either (a 304's would describe the unsent 200).
        if let contentLength, code >= 200, code != 204, code != 304 {
            headers.add(name: "Content-Length", value: String(contentLength))
        }
        let version = head.version
        let close =
            !head.isKeepAlive || response.close
            || (contentLength == nil && version.major == 1 && version.minor == 0)
        // HTTP/2 has no Connection header; closing a stream channel ends only that stream.
        if close, version.major == 1 { headers.add(name: "Connection", value: "close") }
        let responseHead = HTTPResponseHead(
            version: version, status: HTTPResponseStatus(statusCode: code), headers: headers)
        context.write(NIOAny(HTTPServerResponsePart.head(responseHead)), promise: nil)
        return close
    }

    /// Responses up to this size are reported done when written rather than when sent.
    private static let smallResponse = 16 * 1024

    /// Writes the end of the response; `written`, if given, runs once the socket has taken everything before
    /// it (or the write failed).
    private func end(context: ChannelHandlerContext, close: Bool, written: (() -> Void)? = nil) {
        guard close || written != nil else {
            context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
            return
        }
        let channel = context.channel
        context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil))).assumeIsolated().whenComplete { _ in
            written?()
            if close { channel.close(promise: nil) }
        }
    }
}
