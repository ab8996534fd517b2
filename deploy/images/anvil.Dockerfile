# anvil (the EVM node) from npm's @foundry-rs/anvil, whose platform package carries the binary; scripts/images.sh
# installs it into the build context with the host's npm. compose.yaml sets the entrypoint, as for the official
# foundry image.
ARG BASE_IMAGE=smartgate-base:bookworm
FROM ${BASE_IMAGE}
COPY anvil /usr/local/bin/anvil
RUN anvil --version
EXPOSE 8545
