# rustfarm/rust:1.63-*: Debian bookworm's Rust toolchain (every Debian rustc is
# a cross compiler once a target's std is installed), qemu-user to run foreign
# binaries, and Debian's packaged crates as cargo's only registry, so builds
# need no network. A crate's default features are separate packages
# (librust-regex+default-dev). perl, make and cmake, with the target's toolchain
# file, for crates that build C libraries.
ARG PARENT
FROM ${PARENT}
USER root
RUN /usr/local/lib/rustfarm/apt-install.sh @TOOLCHAIN_PACKAGES@ qemu-user \
        librust-regex-dev librust-regex+default-dev librust-serde-json-dev \
        perl make cmake \
 && /usr/local/lib/rustfarm/drop-setuid.sh
COPY scripts/target.cmake /usr/local/share/rustfarm/target.cmake
COPY --chown=rustbuild:rustbuild rust/cargo-config.toml /home/rustbuild/.cargo/config.toml
ENV RUSTFARM_TOOLCHAIN=@TOOLCHAIN@
USER rustbuild
