"""The einspace search space (seed_system.md §1): grammar, sampling, mutation, strings, compiler.

Public surface: ``EinSpace``, ``Architecture``, ``ParseError`` (+ the error types below).
"""
from nas.space.architecture import Architecture
from nas.space.config import SpaceConfig
from nas.space.parser import ParseError
from nas.space.space import EinSpace, MutationError, SamplingError

__all__ = ["EinSpace", "Architecture", "ParseError", "SpaceConfig", "MutationError", "SamplingError"]
