{
  "targets": [
    {
      "target_name": "gatehouse",
      "sources": [
        "native/src/addon.cc",
        "native/src/geneve.cc",
        "native/src/geneve_binding.cc",
        "native/src/udp_socket.cc",
        "native/src/raw_sender.cc",
        "native/src/reflector.cc",
        "native/src/generator.cc",
        "native/src/tun.cc",
        "native/src/flow_key.cc",
        "native/src/gateway.cc",
        "native/src/tunnel.cc",
        "native/src/inspect.cc",
        "native/src/http_relay.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "libraries": ["-lpthread"]
    }
  ]
}
