import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import VelocityConfig
import VelocityStore

/// How `velocity run` was asked to run.
public struct RunOptions: Sendable {
    public var dataDirectory: URL
    /// Overrides the config's `admin.listen` for this process.
    public var adminAddress: String?
    /// A config file to import as a new revision at start.
    public var configFile: String?
    /// Re-import `configFile` whenever its content changes.
    public var watch: Bool

    public init(dataDirectory: URL, adminAddress: String?, configFile: String?, watch: Bool) {
        self.dataDirectory = dataDirectory
        self.adminAddress = adminAddress
        self.configFile = configFile
        self.watch = watch
    }
}

public struct RuntimeError: Error, CustomStringConvertible {
    public var description: String
}

/// The running server: store, coordinator, admin API and data plane, from start to graceful stop.
public enum VelocityRuntime {
    public static func bootstrapLogging() {
        LoggingSystem.bootstrap { LogOutput(label: $0) }
    }

    public static func run(_ options: RunOptions) async throws {
        let logger = Logger(label: "velocity")
        let store = try SQLiteStore(directory: options.dataDirectory)
        var adminOverride: ListenAddress?
        if let text = options.adminAddress {
            guard let address = ListenAddress(text) else {
                throw RuntimeError(description: "invalid admin address \"\(text)\"")
            }
            adminOverride = address
        }
        let latest: Revision
        if let stored = try store.latestRevision() {
            latest = stored
        } else {
            // An empty store starts from the given file, else from the embedded welcome site.
            let document = try options.configFile.map(readConfigFile) ?? DefaultConfig.document
            latest = try commitFirst(
                document, source: options.configFile == nil ? .default : .file, who: options.configFile ?? "velocity",
                adminAddress: ConfigValidator.adminAddress(of: document, override: adminOverride), to: store)
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let coordinator: ConfigCoordinator
        do {
            coordinator = try await ConfigCoordinator(
                store: store, initial: latest, adminOverride: adminOverride, group: group, logger: logger)
        } catch {
            try? await group.shutdownGracefully()
            throw RuntimeError(description: "cannot start revision \(latest.number): \(error)")
        }

        let (stops, stopContinuation) = AsyncStream.makeStream(of: Void.self)
        let requestStop: @Sendable () -> Void = { stopContinuation.yield() }
        let api = AdminAPI(coordinator: coordinator, metrics: AdminMetrics(), requestStop: requestStop)
        do {
            try await coordinator.startAdmin { address in
                try await bindAdmin(address, api: api, snapshots: coordinator.snapshots, group: group)
            }
        } catch {
            let address = await coordinator.adminAddress
            await coordinator.shutdown()
            try? await group.shutdownGracefully()
            throw RuntimeError(description: "cannot listen for the admin API on \(address): \(error)")
        }
        let signals = watchSignals(requestStop)
        await coordinator.startCertificateMaintenance()

        var failure: RuntimeError?
        if let configFile = options.configFile {
            do {
                try await importFile(configFile, into: coordinator, logger: logger)
            } catch {
                failure = error
                requestStop()
            }
        }
        let snapshot = coordinator.snapshots.load()
        let adminAddress = await coordinator.adminAddress
        logger.info(
            "velocity started",
            metadata: [
                "admin": "\(adminAddress)", "revision": "\(snapshot.revision)",
                "listeners":
                    "\(snapshot.listeners.map { "\($0.value.rawValue)://\($0.key)" }.sorted().joined(separator: ","))",
                "data_dir": "\(options.dataDirectory.path)",
            ])
        let renewal = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(3600))
                await coordinator.renewCertificatesIfDue()
            }
        }
        let watcher =
            options.watch ? options.configFile.map { watch($0, coordinator: coordinator, logger: logger) } : nil

        for await _ in stops { break }
        logger.info("velocity stopping")
        watcher?.cancel()
        renewal.cancel()
        for source in signals { source.cancel() }
        await coordinator.shutdown()
        try? await group.shutdownGracefully()
        if let failure { throw failure }
    }

    /// The internal CA's root certificate from a data directory, for people to trust (`velocity ca export`).
    public static func rootCertificatePEM(dataDirectory: URL) throws -> String {
        try CertificateManager.loadOrCreateAuthority(in: SQLiteStore(directory: dataDirectory)).certificatePEM
    }

    private static func commitFirst(
        _ document: JSONValue,
        source: RevisionSource,
        who: String,
        adminAddress: ListenAddress,
        to store: SQLiteStore
    ) throws -> Revision {
        do {
            _ = try ConfigValidator.validate(document, context: ValidationContext(adminAddress: adminAddress))
        } catch {
            throw RuntimeError(description: "\(who): \(error)")
        }
        return try store.commit(
            RevisionDraft(document: document, sha256: Digest.sha256Hex(document), source: source, who: who),
            basedOn: nil)
    }

    private static func bindAdmin(
        _ address: ListenAddress,
        api: AdminAPI,
        snapshots: SnapshotBox,
        group: any EventLoopGroup
    ) async throws -> any Channel {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: .seconds(60)))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AdminHTTPHandler(api: api, snapshots: snapshots))
                }
            }
        switch address {
        case .inet(let host, let port):
            return try await bootstrap.bind(host: host.isEmpty ? "::" : host, port: port).get()
        case .unix(let path):
            let channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
            chmod(path, 0o600)
            return channel
        }
    }

    private static func readConfigFile(_ path: String) throws(RuntimeError) -> JSONValue {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RuntimeError(description: "cannot read \(path)")
        }
        do {
            return try JSONValue(parsing: data)
        } catch {
            throw RuntimeError(description: "\(path): \(error)")
        }
    }

    private static func importFile(_ path: String, into coordinator: ConfigCoordinator, logger: Logger)
        async throws(RuntimeError)
    {
        let document = try readConfigFile(path)
        do {
            _ = try await coordinator.change(source: .file, who: path) { _ in document }
        } catch {
            throw RuntimeError(description: "\(path): \(ChangeError.describe(error))")
        }
    }

    /// Polls the file once a second and imports it when its bytes change; a bad version is logged and skipped.
    private static func watch(_ path: String, coordinator: ConfigCoordinator, logger: Logger) -> Task<Void, Never> {
        Task {
            var last = FileManager.default.contents(atPath: path)
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                let current = FileManager.default.contents(atPath: path)
                guard current != last, current != nil else { continue }
                last = current
                do {
                    try await importFile(path, into: coordinator, logger: logger)
                } catch {
                    logger.error("config file not applied", metadata: ["file": "\(path)", "error": "\(error)"])
                }
            }
        }
    }

    private static func watchSignals(_ requestStop: @escaping @Sendable () -> Void) -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler(handler: requestStop)
            source.resume()
            return source
        }
    }
}

extension ChangeError {
    static func describe(_ error: ChangeError) -> String {
        switch error {
        case .stale(let current): "the config changed meanwhile (now revision \(current))"
        case .edit(let error): error.description
        case .invalid(let error): error.description
        case .listen(let error): error.description
        case .store(let error): "the store refused the change: \(error)"
        }
    }
}
