"""Stage 5, what a boot needs: host toolchain, the content-addressed cache, the kernel and module builds, the guest images."""
