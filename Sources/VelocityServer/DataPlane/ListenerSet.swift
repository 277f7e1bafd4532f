import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import VelocityConfig

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
    private let group: any EventLoopGroup
    private let snapshots: SnapshotBox
    private(set) var channels: [ListenAddress: any Channel] = [:]

    static let idleTimeout = TimeAmount.seconds(60)

    init(group: any EventLoopGroup, snapshots: SnapshotBox) {
        self.group = group
        self.snapshots = snapshots
    }

    /// Binds every address in `wanted` that has no socket yet. On failure, closes what it bound and throws a
    /// ``ListenError`` naming the address that failed.
    func bindMissing(_ wanted: Set<ListenAddress>) async throws(ListenError) -> [ListenAddress] {
        var bound: [ListenAddress] = []
        for address in wanted.sorted(by: { $0.description < $1.description }) where channels[address] == nil {
            do {
                channels[address] = try await bind(address)
                bound.append(address)
            } catch {
                await close(bound)
                throw ListenError(address: address, underlying: error)
            }
        }
        return bound
    }

    func closeUnwanted(_ wanted: Set<ListenAddress>) async {
        await close(channels.keys.filter { !wanted.contains($0) })
    }

    func close(_ addresses: [ListenAddress]) async {
        for address in addresses {
            guard let channel = channels.removeValue(forKey: address) else { continue }
            try? await channel.close()
        }
    }

    private func bind(_ address: ListenAddress) async throws -> any Channel {
        let snapshots = snapshots
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(IdleStateHandler(readTimeout: Self.idleTimeout))
                    try sync.configureHTTPServerPipeline(withErrorHandling: true)
                    try sync.addHandler(HTTP1Handler(snapshots: snapshots))
                }
            }
        switch address {
        case .inet(let host, let port):
            if host.isEmpty {
                // "::" accepts IPv4 too on a dual-stack host; fall back where IPv6 is off.
                do {
                    return try await bootstrap.bind(host: "::", port: port).get()
                } catch {
                    return try await bootstrap.bind(host: "0.0.0.0", port: port).get()
                }
            }
            return try await bootstrap.bind(host: host, port: port).get()
        case .unix(let path):
            return try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        }
    }
}
