import ArgumentParser

/// `velocity quic …`: Velocity's own QUIC and HTTP/3 client, for diagnostics and load.
struct QUICCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quic",
        abstract: "Velocity's own QUIC client: fetch a URL over HTTP/3, echo bytes, generate load.",
        subcommands: [QUICGet.self, QUICEcho.self, QUICLoad.self])
}
