// swift-tools-version:6.0
import PackageDescription

// Module map (arrows point down): webseed (option parsing) → WebseedKit (the engine: one
// ServiceGroup of services) → Gateway, Swarm, DHT, PortMapping → Storage, PeerWire,
// DHTProtocol → Metainfo → Merkle → Hashing → CLibCrypto (and CMappedHash, its SIGBUS-guarded
// hashing of file mappings), and Metainfo → Bencode.
// Names (key files, site names, the rules a reader follows a name by) → DHTProtocol → Signing
// (Ed25519) → CLibCrypto; TrackerProtocol (tracker codecs, tiers, the gateway's tracker table)
// → Bencode; Locking (pthread-mutex locks) under whatever shares state. Swarm and DHT do not
// know each other, nor Gateway the Swarm: WebseedKit wires them. See ARCHITECTURE.md.
let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "webseed",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "webseed", targets: ["webseed"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.34.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        .systemLibrary(name: "CLibCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CMiniUPnPc", pkgConfig: "miniupnpc", providers: [.apt(["libminiupnpc-dev"])]),
        .systemLibrary(name: "CNATPMP", providers: [.apt(["libnatpmp-dev"])]),

        .target(name: "CPosix"),
        .target(name: "CMappedHash", dependencies: ["CLibCrypto"]),
        .target(name: "Locking", swiftSettings: strict),
        .target(name: "Bencode", swiftSettings: strict),
        .target(name: "Hashing", dependencies: ["CLibCrypto", "CMappedHash"], swiftSettings: strict),
        .target(name: "Signing", dependencies: ["CLibCrypto"], swiftSettings: strict),
        .target(name: "Merkle", dependencies: ["Hashing"], swiftSettings: strict),
        .target(name: "Metainfo", dependencies: ["Bencode", "Hashing", "Merkle"], exclude: ["README.md"], swiftSettings: strict),
        .target(name: "Storage", dependencies: ["Metainfo", "Merkle", "Hashing", "CPosix", "Locking"], exclude: ["README.md"], swiftSettings: strict),
        .target(name: "PeerWire", dependencies: ["Bencode", "Hashing", .product(name: "NIOCore", package: "swift-nio")], swiftSettings: strict),
        .target(name: "DHTProtocol", dependencies: ["Bencode", "Hashing", "Signing"], exclude: ["README.md"], swiftSettings: strict),
        .target(name: "TrackerProtocol", dependencies: ["Bencode"], exclude: ["README.md"], swiftSettings: strict),
        .target(name: "LocalDiscovery", exclude: ["README.md"], swiftSettings: strict),
        .target(name: "Names", dependencies: ["Signing", "Metainfo", "Hashing", "Bencode", "DHTProtocol"], swiftSettings: strict),
        .target(name: "DHT", dependencies: ["DHTProtocol", "Bencode", "Signing", .product(name: "NIOCore", package: "swift-nio")], swiftSettings: strict),
        .target(
            name: "Swarm",
            dependencies: [
                "PeerWire", "Storage", "Metainfo", "Merkle", "Hashing", "Bencode", "Locking",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        .target(name: "PortMapping", dependencies: ["CMiniUPnPc", "CNATPMP", "Locking"], exclude: ["README.md"], swiftSettings: strict),
        .target(
            name: "Gateway",
            dependencies: [
                "Metainfo", "Hashing", "Names", "TrackerProtocol", "DHTProtocol", "Locking",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            ],
            exclude: ["README.md"],
            resources: [
                .embedInCode("Browser/bootstrap.html"), .embedInCode("Browser/bencode.js"), .embedInCode("Browser/merkle.js"),
                .embedInCode("Browser/site.js"), .embedInCode("Browser/names.js"), .embedInCode("Browser/sw.js"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "WebseedKit",
            dependencies: [
                "Swarm", "Gateway", "DHT", "DHTProtocol", "PortMapping", "Storage", "Metainfo", "Hashing", "Bencode", "Signing", "Names",
                "TrackerProtocol", "LocalDiscovery", "Locking",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "webseed",
            dependencies: [
                "WebseedKit", "Storage", "Metainfo", "DHTProtocol", "Names", "Signing", "Hashing", "Bencode",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),

        .testTarget(name: "BencodeTests", dependencies: ["Bencode"], swiftSettings: strict),
        .testTarget(name: "HashingTests", dependencies: ["Hashing"], swiftSettings: strict),
        .testTarget(name: "SigningTests", dependencies: ["Signing", "Hashing"], swiftSettings: strict),
        .testTarget(name: "NamesTests", dependencies: ["Names", "Signing", "Metainfo", "Hashing", "Bencode", "DHTProtocol"], swiftSettings: strict),
        .testTarget(name: "TrackerProtocolTests", dependencies: ["TrackerProtocol", "Bencode"], swiftSettings: strict),
        .testTarget(name: "LocalDiscoveryTests", dependencies: ["LocalDiscovery"], swiftSettings: strict),
        .testTarget(name: "MerkleTests", dependencies: ["Merkle", "Hashing"], swiftSettings: strict),
        .testTarget(name: "MetainfoTests", dependencies: ["Metainfo", "Bencode", "Merkle", "Hashing"], swiftSettings: strict),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "Metainfo", "Bencode", "Hashing", "Merkle"], swiftSettings: strict),
        .testTarget(name: "PortMappingTests", dependencies: ["PortMapping", "Locking"], swiftSettings: strict),
        .testTarget(name: "DHTProtocolTests", dependencies: ["DHTProtocol", "Bencode", "Hashing", "Signing"], swiftSettings: strict),
        .testTarget(
            name: "DHTTests",
            dependencies: ["DHT", "DHTProtocol", "Bencode", "Signing",
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "GatewayTests",
            dependencies: ["Gateway", "Metainfo", "Merkle", "Hashing", "Names", "Signing", "TrackerProtocol", "Bencode", "Locking",
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "HummingbirdTesting", package: "hummingbird"),
                           .product(name: "HTTPTypes", package: "swift-http-types"),
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "Prometheus", package: "swift-prometheus")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "PeerWireTests",
            dependencies: ["PeerWire", "Bencode", "Hashing", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOTestUtils", package: "swift-nio")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "WebseedKitTests",
            dependencies: ["WebseedKit", "Gateway", "Swarm", "Storage", "Metainfo", "PortMapping", "DHT", "DHTProtocol", "Names", "Signing", "Bencode", "Hashing", "Locking",
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), .product(name: "Logging", package: "swift-log"),
                           .product(name: "Prometheus", package: "swift-prometheus")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SwarmTests",
            dependencies: ["Swarm", "PeerWire", "Storage", "Metainfo", "Merkle", "Hashing", "Bencode", "Locking",
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
