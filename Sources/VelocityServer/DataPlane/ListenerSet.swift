import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import VelocityConfig
import VelocityTLS

/// A data-plane socket: an address and its transport. A TCP and a UDP socket may share an address, as HTTPS
/// and QUIC usually share port 443.
public struct ListenerSlot: Hashable, Sendable, CustomStringConvertible {
    public var address: ListenAddress
    public var isUDP: Bool

    public var description: String { isUDP ? "udp/\(address)" : "\(address)" }
}

/// A socket that could not be opened, with the reason as a person reads it (`Address already in use`).
struct ListenError: Error, CustomStringConvertible {
    var address: ListenAddress
    var underlying: any Error

    var description: String {
        let reason = (underlying as? IOError).map { String(cString: strerror($0.errnoCode)) } ?? "\(underlying)"
        return "cannot listen on \(address): \(reason)"
    }
}

/// The data plane's listening sockets, reconciled with each new config in two steps so that a change that
/// cannot bind a new address changes nothing: ``bindMissing(_:)`` opens the sockets a config adds (before
/// anything is committed), then ``closeUnwanted(_:)`` closes those it dropped (after the swap). Unchanged
/// addresses keep their socket and every connection on it.
actor ListenerSet {
    typealias Wanted = [ListenerSlot: ListenerConfig.TransportProtocol]

    private let group: any EventLoopGroup
    private let snapshots: SnapshotBox
    private var channels: [ListenerSlot: (channel: any Channel, protocol: ListenerConfig.TransportProtocol)] = [:]

    init(group: any EventLoopGroup, snapshots: SnapshotBox) {
        self.group = group
        self.snapshots = snapshots
    }

    /// Binds every address in `wanted` that has no socket speaking its protocol yet. On failure, closes what
    /// it bound and throws a ``ListenError`` naming the address that failed. An address that changes
    /// protocol is closed first, since both cannot hold the port.
    func bindMissing(_ wanted: Wanted) async throws(ListenError) -> [ListenerSlot] {
        var bound: [ListenerSlot] = []
        for (address, kind) in wanted.sorted(by: { $0.key.description < $1.key.description }) {
            if let existing = channels[address] {
                guard existing.protocol != kind else { continue }
                await close([address])
            }
            do {
                channels[address] = (try await bind(address, kind), kind)
                bound.append(address)
            } catch {
                await close(bound)
                throw ListenError(address: address.address, underlying: error)
            }
        }
        return bound
    }

    func closeUnwanted(_ wanted: Wanted) async {
        await close(channels.filter { wanted[$0.key] != $0.value.protocol }.map(\.key))
    }

    func close(_ addresses: [ListenerSlot]) async {
        for address in addresses {
            guard let entry = channels.removeValue(forKey: address) else { continue }
            try? await entry.channel.close()
            // The close promise completes before the pipeline is torn down; the socket is gone after this.
            try? await entry.channel.closeFuture.get()
        }
    }

    private func bind(_ slot: ListenerSlot, _ kind: ListenerConfig.TransportProtocol) async throws -> any Channel {
        if kind == .quic { return try await QUICListener.bind(slot.address, group: group, snapshots: snapshots) }
        let address = slot.address
        let snapshots = snapshots
        let https = kind == .https
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    // The timeouts of the snapshot current at accept time govern the connection.
                    let snapshot = snapshots.load()
                    try sync.addHandler(IdleStateHandler(readTimeout: snapshot.idleTimeout))
                    if https {
                        try HTTPSPipeline.configure(sync, snapshot: snapshot, snapshots: snapshots)
                    } else {
                        try HTTP1Pipeline.configure(
                            sync,
                            handler: HTTP1Handler(
                                snapshots: snapshots, scheme: "http", zeroCopy: true,
                                headTimeout: snapshot.requestHeadTimeout))
                    }
                }
            }
        switch address {
        case .inet(let host, let port):
            return try await Self.bind(host: host, port: port) { try await bootstrap.bind(host: $0, port: $1).get() }
        case .unix(let path):
            return try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        }
    }

    /// Binds `host:port`; an empty host means every interface: "::", which accepts IPv4 too on a dual-stack
    /// host, else "0.0.0.0" where IPv6 is off.
    static func bind(
        host: String, port: Int, _ bind: (String, Int) async throws -> any Channel
    ) async throws -> any Channel {
        guard host.isEmpty else { return try await bind(host, port) }
        do {
            return try await bind("::", port)
        } catch {
            return try await bind("0.0.0.0", port)
        }
    }
}
