"""Imported once by the matrix's fork server: every job is a fork of a process that has the stack loaded."""

from .matrix import preload

preload()
