import Foundation
import NIOCore

/// A connection's qlog (the IETF QUIC logging schema, JSON-SEQ: one JSON record per event, each after an RS
/// byte), for studying a connection in tools such as qvis. Only built when `quic.qlog_dir` is set: events are
/// kept in memory and written in batches, so logging costs one write per 64 KiB.
final class QLog {
    private let path: String
    /// Opened at the first write, so a connection that never authenticates leaves no file.
    private var file: FileHandle?
    private let start: NIODeadline
    private var pending: [UInt8] = []
    private var isDiscarded = false
    private var hasClosed = false
    private static let batch = 64 << 10

    /// Logs to `<directory>/<connection ID>.sqlog`, starting with the header record.
    init(directory: String, connectionID: ConnectionID, now: NIODeadline) {
        path = "\(directory)/\(connectionID).sqlog"
        start = now
        record(
            #"{"qlog_version":"0.3","qlog_format":"JSON-SEQ","title":"velocity","trace":{"vantage_point":"#
                + #"{"type":"server"},"common_fields":{"ODCID":"\#(connectionID)","time_format":"relative"}}}"#)
    }

    deinit {
        write()
        try? file?.close()
    }

    /// Forgets everything logged and logs nothing more: the connection turned out to be a forgery.
    func discard() {
        isDiscarded = true
        pending = []
    }

    func packetReceived(type: String, number: UInt64, size: Int, frames: [Frame], now: NIODeadline) {
        event(
            "transport:packet_received", now: now,
            #"{"header":{"packet_type":"\#(type)","packet_number":\#(number)},"raw":{"length":\#(size)},"#
                + #""frames":[\#(frames.map(Self.describe).joined(separator: ","))]}"#)
    }

    func packetSent(type: String, number: UInt64, size: Int, frames: [SentFrame], now: NIODeadline) {
        event(
            "transport:packet_sent", now: now,
            #"{"header":{"packet_type":"\#(type)","packet_number":\#(number)},"raw":{"length":\#(size)},"#
                + #""frames":[\#(frames.map(Self.describe).joined(separator: ","))]}"#)
    }

    func packetsLost(type: String, numbers: [UInt64], now: NIODeadline) {
        for number in numbers {
            event(
                "recovery:packet_lost", now: now,
                #"{"header":{"packet_type":"\#(type)","packet_number":\#(number)}}"#)
        }
    }

    func metrics(window: Int, bytesInFlight: Int, rtt: RTTEstimator, now: NIODeadline) {
        event(
            "recovery:metrics_updated", now: now,
            #"{"congestion_window":\#(window),"bytes_in_flight":\#(bytesInFlight),"#
                + #""smoothed_rtt":\#(Self.milliseconds(rtt.smoothed)),"min_rtt":\#(Self.milliseconds(rtt.minimum)),"#
                + #""latest_rtt":\#(Self.milliseconds(rtt.latest))}"#)
    }

    /// Logs how the connection ended; only the first cause counts (a close is followed by its end).
    func closed(reason: String, now: NIODeadline) {
        guard !hasClosed else { return }
        hasClosed = true
        event("transport:connection_closed", now: now, #"{"trigger":"\#(Self.escape(reason))"}"#)
        write()
    }

    private func event(_ name: String, now: NIODeadline, _ data: String) {
        record(#"{"time":\#(Self.milliseconds(now - start)),"name":"\#(name)","data":\#(data)}"#)
    }

    private func record(_ json: String) {
        guard !isDiscarded else { return }
        pending.append(0x1E)
        pending += json.utf8
        pending.append(0x0A)
        if pending.count >= Self.batch { write() }
    }

    /// Writes what is pending; a file that cannot be made or written loses the log, never the connection.
    private func write() {
        guard !pending.isEmpty else { return }
        if file == nil,
            FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        {
            file = FileHandle(forWritingAtPath: path)
        }
        try? file?.write(contentsOf: pending)
        pending.removeAll(keepingCapacity: true)
    }

    private static func milliseconds(_ time: TimeAmount) -> String {
        String(Double(time.nanoseconds) / 1_000_000)
    }

    private static func escape(_ text: String) -> String {
        String(text.unicodeScalars.map { $0 == "\"" || $0 == "\\" || $0.value < 0x20 ? " " : Character($0) })
    }

    private static func describe(_ frame: Frame) -> String {
        switch frame {
        case .padding(let count): return #"{"frame_type":"padding","length":\#(count)}"#
        case .ping: return #"{"frame_type":"ping"}"#
        case .ack(let ack):
            let ranges = ack.ranges.reversed().map { "[\($0.lowerBound),\($0.upperBound)]" }.joined(separator: ",")
            return #"{"frame_type":"ack","acked_ranges":[\#(ranges)]}"#
        case .crypto(let offset, let data):
            return #"{"frame_type":"crypto","offset":\#(offset),"length":\#(data.readableBytes)}"#
        case .stream(let stream):
            return #"{"frame_type":"stream","stream_id":\#(stream.id),"offset":\#(stream.offset),"#
                + #""length":\#(stream.data.readableBytes),"fin":\#(stream.fin)}"#
        case .resetStream(let id, let code, let size):
            return #"{"frame_type":"reset_stream","stream_id":\#(id),"error_code":\#(code),"final_size":\#(size)}"#
        case .stopSending(let id, let code):
            return #"{"frame_type":"stop_sending","stream_id":\#(id),"error_code":\#(code)}"#
        case .maxData(let maximum): return #"{"frame_type":"max_data","maximum":\#(maximum)}"#
        case .maxStreamData(let id, let maximum):
            return #"{"frame_type":"max_stream_data","stream_id":\#(id),"maximum":\#(maximum)}"#
        case .maxStreams(let bidirectional, let maximum):
            return
                #"{"frame_type":"max_streams","stream_type":"\#(bidirectional ? "bidirectional" : "unidirectional")","#
                + #""maximum":\#(maximum)}"#
        case .connectionClose(let close):
            return
                #"{"frame_type":"connection_close","error_space":"\#(close.isApplication ? "application" : "transport")","#
                + #""error_code":\#(close.errorCode)}"#
        default:
            return #"{"frame_type":"\#(frame.qlogName)"}"#
        }
    }

    private static func describe(_ frame: SentFrame) -> String {
        switch frame {
        case .crypto(let offset, let data): describe(Frame.crypto(offset: offset, data: data))
        case .stream(let id, let offset, let data, let fin):
            describe(Frame.stream(StreamFrame(id: id, offset: offset, data: data, fin: fin)))
        case .handshakeDone: #"{"frame_type":"handshake_done"}"#
        case .maxData: #"{"frame_type":"max_data"}"#
        case .maxStreamData(let id): #"{"frame_type":"max_stream_data","stream_id":\#(id)}"#
        case .maxStreams: #"{"frame_type":"max_streams"}"#
        case .resetStream(let id, let code, let size):
            describe(Frame.resetStream(id: id, errorCode: code, finalSize: size))
        case .stopSending(let id, let code): describe(Frame.stopSending(id: id, errorCode: code))
        case .newConnectionID(let frame): #"{"frame_type":"new_connection_id","sequence_number":\#(frame.sequence)}"#
        case .newToken: #"{"frame_type":"new_token"}"#
        case .pathChallenge: #"{"frame_type":"path_challenge"}"#
        case .ack(let largest): #"{"frame_type":"ack","largest_acknowledged":\#(largest)}"#
        }
    }
}

extension Frame {
    /// The frame's name in qlog.
    fileprivate var qlogName: String {
        switch self {
        case .padding: "padding"
        case .ping: "ping"
        case .ack: "ack"
        case .resetStream: "reset_stream"
        case .stopSending: "stop_sending"
        case .crypto: "crypto"
        case .newToken: "new_token"
        case .stream: "stream"
        case .maxData: "max_data"
        case .maxStreamData: "max_stream_data"
        case .maxStreams: "max_streams"
        case .dataBlocked: "data_blocked"
        case .streamDataBlocked: "stream_data_blocked"
        case .streamsBlocked: "streams_blocked"
        case .newConnectionID: "new_connection_id"
        case .retireConnectionID: "retire_connection_id"
        case .pathChallenge: "path_challenge"
        case .pathResponse: "path_response"
        case .connectionClose: "connection_close"
        case .handshakeDone: "handshake_done"
        case .datagram: "datagram"
        }
    }
}
