"""engine/policy"""
