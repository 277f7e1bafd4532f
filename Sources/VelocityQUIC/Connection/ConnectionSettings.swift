import NIOCore

/// The limits this server offers every connection, sent as transport parameters (RFC 9000 §18.2).
public struct ConnectionSettings: Sendable {
    public var idleTimeout: TimeAmount = .seconds(30)
    /// Per-stream receive window.
    public var streamWindow: UInt64 = 1 << 20
    /// Connection-wide receive window.
    public var connectionWindow: UInt64 = 4 << 20
    public var maxBidirectionalStreams: UInt64 = 100
    public var maxUnidirectionalStreams: UInt64 = 100
    /// How long an acknowledgement may wait for a second packet (max_ack_delay).
    public var maxAckDelay: TimeAmount = .milliseconds(25)
    /// The UDP payload size packets are built to: safe on any path with an IPv6-sized MTU.
    public var maxDatagramSize = 1350
    public var congestionControl = CongestionControlAlgorithm.cubic
    /// The largest DATAGRAM frame (RFC 9221) accepted; 0, the default, turns unreliable datagrams off.
    public var maxDatagramFrameSize: UInt64 = 0
    /// Where each connection's qlog is written (`<connection ID>.sqlog`); nil for none.
    public var qlogDirectory: String?

    public init() {}
}
