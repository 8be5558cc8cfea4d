"""Sandbox hosts: isolated SSH hosts on 127.0.1.N, each in its own mount, UTS and PID namespace.

The built-in default target of the demo and the test bed of the end-to-end tests. Needs root.
"""
