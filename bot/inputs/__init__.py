"""A repository turned into manifest files and analysed environments.

Directory, tarball and git-object readers, kustomize and helm run in a sandbox, source maps
back to the author's lines, environment discovery, and the engine run of one review.
Knows nothing of GitHub or of rendering.
"""
