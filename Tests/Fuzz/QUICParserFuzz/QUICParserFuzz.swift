import Foundation
import NIOCore

@testable import VelocityQUIC

/// Feeds arbitrary bytes to every parser that reads what a QUIC peer sends: packet headers (long, short, with
/// tokens), frames, and transport parameters. Any crash, hang or runaway allocation is a bug.
func parseEverything(_ bytes: UnsafeRawBufferPointer) {
    let buffer = ByteBuffer(bytes: bytes)
    _ = PacketHeader.destination(of: buffer, shortHeaderIDLength: 8)
    var start = 0
    while start < buffer.writerIndex, let header = try? PacketHeader.parse(buffer, at: start, shortHeaderIDLength: 8) {
        start = header.end
    }
    var frames = buffer
    while frames.readableBytes > 0, (try? Frame.parse(from: &frames)) != nil {}
    _ = try? TransportParameters.decode(buffer, fromClient: true)
    _ = try? TransportParameters.decode(buffer, fromClient: false)
}

#if FUZZING
    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
        parseEverything(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }

    @_silgen_name("LLVMFuzzerRunDriver")
    func runFuzzer(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ test: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
    ) -> CInt

    /// SwiftPM links an executable's entry point under this name; here it hands over to libFuzzer's driver.
    @_cdecl("QUICParserFuzz_main")
    public func fuzzerMain(
        _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
    ) -> CInt {
        var argc = argc
        var argv = argv
        return runFuzzer(&argc, &argv, fuzz)
    }
#endif

#if !FUZZING
    /// Without libFuzzer: replays the files given (a corpus, or inputs that once crashed) through the parsers.
    @main
    enum Replay {
        static func main() {
            for path in CommandLine.arguments.dropFirst() {
                guard let data = FileManager.default.contents(atPath: path) else {
                    print("cannot read \(path)")
                    exit(1)
                }
                data.withUnsafeBytes(parseEverything)
            }
        }
    }
#endif
