# rustfarm/rust:1.96-*: Debian's rustc-web and cargo-web 1.96 (bookworm-security)
# with the standard library's sources (rust-web-src), from which each target
# image builds its std once; zig, which links the musl and wasm targets;
# qemu-user to run foreign binaries; Debian's packaged crates as cargo's only
# registry, so builds need no network; perl, make and cmake, with the target's
# toolchain file (scripts/target.cmake), for crates that build C libraries.
ARG PARENT
FROM ${PARENT} AS zig
USER root
# The wheel is a zip of zig and its lib/ folder. Only Linux and Windows C
# libraries are kept: the farm builds no macOS, BSD or WASI targets.
COPY rust/zig-requirements.txt wheels/ /tmp/wheels/
RUN python3 -m zipfile -e /tmp/wheels/ziglang-*.whl /tmp/unpacked \
 && mv /tmp/unpacked/ziglang /opt/zig \
 && chmod 0755 /opt/zig/zig \
 && rm -rf /opt/zig/lib/libc/darwin /opt/zig/lib/libc/freebsd /opt/zig/lib/libc/netbsd \
        /opt/zig/lib/libc/openbsd /opt/zig/lib/libc/wasi /opt/zig/doc \
        /opt/zig/lib/libc/include/*-macos* /opt/zig/lib/libc/include/*-freebsd* \
        /opt/zig/lib/libc/include/*-netbsd* /opt/zig/lib/libc/include/*-openbsd* \
        /opt/zig/lib/libc/include/wasm-wasi* \
 && find /opt/zig -name '__pycache__' -prune -exec rm -rf {} + \
 && /opt/zig/zig version

FROM ${PARENT}
USER root
RUN /usr/local/lib/rustfarm/apt-install.sh @TOOLCHAIN_PACKAGES@ qemu-user \
        librust-regex-dev librust-regex+default-dev librust-serde-json-dev \
        perl make cmake \
 && /usr/local/lib/rustfarm/drop-setuid.sh
COPY --from=zig /opt/zig /opt/zig
COPY scripts/rustfarm-wasm-ld scripts/rustfarm-zig-ar scripts/rustfarm-zig-cc \
     scripts/rustfarm-zig-ranlib /usr/local/bin/
COPY scripts/target.cmake /usr/local/share/rustfarm/target.cmake
COPY --chown=rustbuild:rustbuild rust/cargo-config.toml /home/rustbuild/.cargo/config.toml
RUN ln -s /opt/zig/zig /usr/local/bin/zig \
 && install -d -o rustbuild -g rustbuild /home/rustbuild/.cache /home/rustbuild/.cache/zig
# zig keeps the C libraries it builds per target here; target images fill it
# when they check their linker, so builds find them ready.
ENV RUSTFARM_TOOLCHAIN=@TOOLCHAIN@ \
    RUSTFARM_STD_SOURCE=@STD_SOURCE@ \
    ZIG_GLOBAL_CACHE_DIR=/home/rustbuild/.cache/zig
USER rustbuild
