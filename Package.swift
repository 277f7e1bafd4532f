// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "velocity",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "velocity", targets: ["velocity"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-atomics.git", exact: "1.3.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", exact: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", exact: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", exact: "1.46.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", exact: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", exact: "1.7.4"),
    ],
    targets: [
        .target(name: "VelocityConfig"),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CBrotli", pkgConfig: "libbrotlienc", providers: [.apt(["libbrotli-dev"])]),
        .target(name: "CVelocitySystem"),
        .target(
            name: "VelocityStore",
            dependencies: [
                "VelocityConfig",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .target(
            name: "VelocityTLS",
            dependencies: [
                "VelocityConfig",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                // For CNIOBoringSSL, BoringSSL as swift-nio-ssl vendors it; every C call stays in this target.
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "VelocityQUIC",
            dependencies: [
                "VelocityTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "VelocityHTTP3",
            dependencies: [
                "VelocityQUIC",
                "VelocityTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .target(
            name: "VelocityACME",
            dependencies: [
                "VelocityConfig",
                "VelocityStore",
                "VelocityTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "VelocityHTTP",
            dependencies: [
                "VelocityConfig",
                "CZlib",
                "CBrotli",
                "CVelocitySystem",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .target(
            name: "VelocityServer",
            dependencies: [
                "VelocityConfig",
                "VelocityStore",
                "VelocityHTTP",
                "VelocityTLS",
                "VelocityQUIC",
                "VelocityHTTP3",
                "VelocityACME",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "velocity",
            dependencies: [
                "VelocityConfig",
                "VelocityHTTP",
                "VelocityServer",
                "VelocityTLS",
                "VelocityQUIC",
                "VelocityHTTP3",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "RoutingBenchmark",
            dependencies: ["VelocityConfig", "VelocityHTTP", .product(name: "HTTPTypes", package: "swift-http-types")],
            path: "benchmarks/routing"
        ),
        .executableTarget(
            name: "QUICParserFuzz",
            dependencies: ["VelocityQUIC", .product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/Fuzz/QUICParserFuzz"
        ),
        .testTarget(name: "VelocityConfigTests", dependencies: ["VelocityConfig"]),
        .testTarget(name: "VelocityStoreTests", dependencies: ["VelocityStore"]),
        .testTarget(
            name: "VelocityTLSTests",
            dependencies: [
                "VelocityTLS",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "VelocityACMETests",
            dependencies: [
                "VelocityACME",
                "VelocityConfig",
                "VelocityStore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .testTarget(
            name: "VelocityQUICTests",
            dependencies: [
                "VelocityQUIC",
                "VelocityTLS",
                "VelocityConfig",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "VelocityHTTP3Tests",
            dependencies: [
                "VelocityHTTP3",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "VelocityHTTPTests",
            dependencies: [
                "VelocityHTTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
    ]
)
