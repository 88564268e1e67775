#!/usr/bin/python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-2.0-only

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: livepatch
short_description: Install, apply, revert or remove a kernel live patch with livepatchd
description:
  - Brings one patch of livepatchd's store to a state through C(livepatchctl --json), which
    talks to livepatchd over D-Bus.
  - Idempotent - a second run with the same arguments changes nothing and reports C(ok).
  - Waits for the transition of an apply or a revert to end, at most I(timeout) seconds, and
    fails with livepatchd's named error (for example C(NotTopPatch), C(KernelMismatch),
    C(TransitionInProgress)) and the tasks that block the transition when it cannot finish.
  - A patch whose apply is still under way (one that timed out) is reverted in flight by
    I(state=reverted) or I(state=absent), at once (livepatchd's Revert reverses it); for the
    other states such a transition is first waited for.
  - Supports check mode and diff mode (the patch's state before and after).
version_added: 0.1.0
author:
  - livepatchd developers (@livepatchd)
options:
  name:
    description:
      - The patch's name, which is its kernel module's name (1 to 55 letters, digits and
        underscores).
    type: str
    required: true
  src:
    description:
      - Path, on the managed host, of the patch module (C(.ko)) to install when the patch is
        not in the store yet. Needed for I(state=installed) and I(state=applied) when the
        patch is not installed.
      - When the patch is installed already and I(src) is given, its SHA-256 must match the
        stored module's, or the module fails rather than silently keep another build.
    type: path
  state:
    description:
      - C(installed) - in the store; applied or not, as it is.
      - C(applied) - in the store (installed from I(src) if needed) and applied; it is then
        wanted, so livepatchd applies it again at every boot.
      - C(reverted) - not applied and no longer wanted; a patch that is not installed is left
        absent.
      - C(absent) - not in the store; reverted first when applied.
    type: str
    choices: [installed, applied, reverted, absent]
    default: applied
  timeout:
    description:
      - Seconds to wait for a transition to end, and for another patch's transition to end
        before this one can start.
      - On timeout the transition stays under way; livepatchd's C(transition.on_stall)
        setting decides what happens to it at its stall timeout.
    type: int
    default: 300
  poll_interval:
    description:
      - Seconds between two looks at the transition.
    type: float
    default: 1.0
  livepatchctl:
    description:
      - Path of livepatchctl. By default it is looked up on C(PATH).
    type: path
notes:
  - Changing anything needs root or polkit's consent on the host (use I(become)).
  - Patches leave the stack top first - reverting a patch with another applied above it fails
    with C(NotTopPatch).
requirements:
  - livepatchd running on the host, and its livepatchctl
'''

EXAMPLES = r'''
- name: Install and apply a fix
  livepatchd.livepatch.livepatch:
    name: lp_fix_cve_2026_1234
    src: /var/cache/livepatches/lp_fix_cve_2026_1234.ko
    state: applied
    timeout: 120
  become: true

- name: Take it out again and drop it from the store
  livepatchd.livepatch.livepatch:
    name: lp_fix_cve_2026_1234
    state: absent
  become: true
'''

RETURN = r'''
name:
  description: The patch's name.
  returned: always
  type: str
  sample: lp_fix_cve_2026_1234
state:
  description: The patch's state after the run (livepatchd's C(State) of the patch, or
    C(absent)); in check mode, the state it would have.
  returned: always
  type: str
  sample: applied
previous_state:
  description: The patch's state before the run.
  returned: always
  type: str
  sample: installed
actions:
  description: What was done (or, in check mode, would be), in order - C(install),
    C(apply), C(revert), C(remove).
  returned: always
  type: list
  elements: str
  sample: [install, apply]
patch:
  description: The patch as livepatchctl lists it, after the run; empty when absent.
  returned: always
  type: dict
  sample: {name: lp_fix, state: applied, enabled: true, transition: false, replace: false,
           stack_order: 1, installed_at: 1764790000000000, applied_at: 1764790001000000,
           skip_reason: '', sha256: 0123abcd, livepatch_objects: []}
error:
  description: On failure, livepatchd's error name without its prefix
    C(org.livepatchd.LivePatch1.Error.) (or C(org.freedesktop.DBus.Error.AccessDenied) and
    the like), or C(Timeout) when the transition did not end in time, C(Reversed) when
    livepatchd reversed it, C(NameMismatch) or C(BuildMismatch) for a wrong I(src).
  returned: failure
  type: str
  sample: NotTopPatch
blocking:
  description: On failure of a transition, the tasks that blocked it, as
    C(livepatchctl --json blocking) lists them.
  returned: failure
  type: list
  elements: dict
  sample: [{tid: 4242, tgid: 4242, comm: cat, reason: sleeping-in-function,
            function: "lpshim_target_sleep [lpshim_target]", kind: user, state: S,
            unit: app.service, blocked_usec: 30000000, actions: [], stack: []}]
'''

import hashlib
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.livepatchd.livepatch.plugins.module_utils.livepatchctl import (
    Livepatchctl, LivepatchctlError, MOVING_STATES, find_patch, snake_patch, wait_idle,
    wait_transition)

NAME_MAX = 55


def valid_name(name):
    return 0 < len(name) <= NAME_MAX and all(c.isascii() and (c.isalnum() or c == '_')
                                             for c in name)


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def plan(current, wanted):
    """The actions that take a patch from state `current` (livepatchd's State, or 'absent')
    to `wanted`, in order."""
    applied = current in ('applied', 'applying', 'skipped')
    if wanted == 'installed':
        return ['install'] if current == 'absent' else []
    if wanted == 'applied':
        if current == 'absent':
            return ['install', 'apply']
        if current in ('installed', 'skipped', 'reverting'):
            return ['apply']
        return []
    if wanted == 'reverted':
        return ['revert'] if applied else []
    # absent
    return (['revert'] if applied else []) + (['remove'] if current != 'absent' else [])


def predicted_state(current, actions):
    state = current
    for action in actions:
        state = {'install': 'installed', 'apply': 'applied', 'revert': 'installed',
                 'remove': 'absent'}[action]
    return state


class PatchRun(object):
    def __init__(self, module):
        self.module = module
        p = module.params
        self.name = p['name']
        self.src = p['src']
        self.timeout = p['timeout']
        self.poll = p['poll_interval']
        self.ctl = Livepatchctl(module, p['livepatchctl'])
        self.result = {'changed': False, 'name': self.name, 'actions': []}

    def fail(self, error, **extra):
        result = dict(self.result)
        result.update(error.result())
        result['blocking'] = getattr(error, 'blocking', [])
        result.update(extra)
        # livepatchd's messages name the patch already; livepatchctl's own may not.
        message = error.message if self.name in error.message else '%s: %s' % (self.name, error.message)
        if error.error:
            message = '%s (%s)' % (message, error.error)
        self.module.fail_json(msg=message, **result)

    def check_src(self, patch):
        """A given src must exist and, for a stored patch, be the stored build."""
        if not self.src:
            return
        if not os.path.isfile(self.src):
            self.module.fail_json(msg='%s: src %s is not a file on the host' % (self.name, self.src),
                                  error='SourceMissing', **self.result)
        if patch is None or not patch.get('SHA256'):
            return
        sha = file_sha256(self.src)
        if sha != patch['SHA256']:
            self.module.fail_json(
                msg='%s: the store holds another build of it (SHA-256 %s) than src %s (%s); '
                    'a new build of a fix needs a new name (a patch is named after its module), '
                    'or revert and remove the old one first (state: absent)'
                    % (self.name, patch['SHA256'], self.src, sha),
                error='BuildMismatch', **self.result)

    def install(self):
        out = self.ctl.run('install', self.src)[1] or {}
        installed = out.get('Name')
        if installed != self.name:
            # Nothing half-done: the other patch did not exist before (Install refuses a name
            # already installed), so it goes again.
            try:
                self.ctl.run('remove', installed)
            except LivepatchctlError:
                pass
            self.module.fail_json(
                msg='%s: src %s is the patch module %s, not %s; name the patch after its module'
                    % (self.name, self.src, installed, self.name),
                error='NameMismatch', **self.result)

    def transition(self, verb, in_flight=False):
        if not in_flight:
            wait_idle(self.ctl, self.timeout, self.poll)
        self.ctl.run('--no-block', verb, self.name)
        status, blocking = wait_transition(self.ctl, self.name, self.timeout, self.poll)
        patch = find_patch(status, self.name)
        state = patch.get('State') if patch else 'absent'
        if (verb == 'apply') != (state == 'applied'):
            error = LivepatchctlError(
                'its transition to %s was reversed: it ended %s (livepatchd State %s); a task '
                "kept it open past transition.stall_timeout_ms, or someone reverted it: see "
                "'journalctl -u livepatchd' on the host"
                % ('patched' if verb == 'apply' else 'unpatched', state, status.get('State')),
                error='Reversed')
            error.blocking = blocking
            raise error

    def run(self):
        if not valid_name(self.name):
            self.module.fail_json(
                msg='"%s" is not a patch name: a patch is named after its kernel module, 1 to %d '
                    'letters, digits and underscores' % (self.name, NAME_MAX),
                error='InvalidArgs', **self.result)
        wanted = self.module.params['state']
        try:
            status = self.ctl.status()
            patch = find_patch(status, self.name)
            current = patch.get('State') if patch else 'absent'
            # An apply under way (one that timed out, someone else's) is undone by reverting
            # it in flight (docs/dbus-api.md, Revert): waiting for its end first could wait
            # forever on the very transition that is to be undone.
            in_flight = wanted in ('reverted', 'absent') and current == 'applying'
            if current in MOVING_STATES and not in_flight:
                # Someone else's transition of this patch: its end decides what is left to do.
                status, dummy = wait_transition(self.ctl, self.name, self.timeout, self.poll)
                patch = find_patch(status, self.name)
                current = patch.get('State') if patch else 'absent'
            self.result['previous_state'] = current
            if wanted in ('installed', 'applied'):
                self.check_src(patch)
            actions = plan(current, wanted)
            if 'install' in actions and not self.src:
                # In check mode too: the real run could not do it.
                self.module.fail_json(
                    msg='%s is not installed and no src was given: name the patch module (.ko) '
                        'on the host to install it from' % self.name,
                    error='NotInstalled', **self.result)
            self.result['actions'] = actions
            self.result['changed'] = bool(actions)
            after = predicted_state(current, actions)
            self.result['diff'] = {'before': {'name': self.name, 'state': current},
                                   'after': {'name': self.name, 'state': after}}
            if self.module.check_mode or not actions:
                self.result['state'] = after
                self.result['patch'] = snake_patch(patch) if patch and after != 'absent' else {}
                return self.result
            for action in actions:
                if action == 'install':
                    self.install()
                elif action == 'remove':
                    wait_idle(self.ctl, self.timeout, self.poll)
                    self.ctl.run('remove', self.name)
                else:
                    self.transition(action, in_flight and action == 'revert')
            patch = find_patch(self.ctl.status(), self.name)
        except LivepatchctlError as e:
            self.fail(e)
        self.result['state'] = patch.get('State') if patch else 'absent'
        self.result['patch'] = snake_patch(patch) if patch else {}
        self.result['diff']['after']['state'] = self.result['state']
        return self.result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            src=dict(type='path'),
            state=dict(type='str', default='applied',
                       choices=['installed', 'applied', 'reverted', 'absent']),
            timeout=dict(type='int', default=300),
            poll_interval=dict(type='float', default=1.0),
            livepatchctl=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    if module.params['timeout'] < 0 or module.params['poll_interval'] <= 0:
        module.fail_json(msg='timeout must be 0 or more seconds and poll_interval more than 0 '
                             '(got timeout=%s, poll_interval=%s)'
                             % (module.params['timeout'], module.params['poll_interval']))
    module.exit_json(**PatchRun(module).run())


if __name__ == '__main__':
    main()
