"""Deliberately broken ecs-boot builds for the fault matrix's meta-test (test_faults_mutants.py).

Each mutant is the crate's source with a few regex edits, found by searching src/**/*.rs for a
code shape (never by file path: files move). A patch that no longer matches fails the meta-test
with the mutant's name: update the pattern here, the mutant is meant to keep existing.
"""
