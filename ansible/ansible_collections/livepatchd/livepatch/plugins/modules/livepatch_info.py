#!/usr/bin/python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-2.0-only

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: livepatch_info
short_description: Read livepatchd's patches, their states, the kernel and the transition
description:
  - Returns what C(livepatchctl --json status) reports on the host - the kernel release,
    lpshim's version, livepatchd's State, the transition under way and how many tasks it
    waits for, and every patch with its state - plus the tasks blocking the transition
    (C(livepatchctl --json blocking)) and the result of C(livepatchctl check).
  - Changes nothing; runs the same in check mode.
version_added: 0.1.0
author:
  - livepatchd developers (@livepatchd)
options:
  blocking:
    description:
      - Also list the tasks a transition under way waits for.
    type: bool
    default: true
  livepatchctl:
    description:
      - Path of livepatchctl. By default it is looked up on C(PATH).
    type: path
requirements:
  - livepatchd running on the host, and its livepatchctl
'''

EXAMPLES = r'''
- name: Read livepatchd's state
  livepatchd.livepatch.livepatch_info:
  register: lp

- name: Hosts that still miss the fix
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }} runs {{ lp.kernel }} without lp_fix_cve"
  when: lp.patches | selectattr('name', 'equalto', 'lp_fix_cve')
        | selectattr('state', 'equalto', 'applied') | list | length == 0
'''

RETURN = r'''
kernel:
  description: The running kernel's release.
  returned: always
  type: str
  sample: 6.1.0-57-amd64
shim_version:
  description: The version of the loaded lpshim.ko; empty when it is not loaded.
  returned: always
  type: str
  sample: 0.1.0
service_state:
  description: livepatchd's C(State) - C(idle), C(transitioning), C(stalled) or C(error).
  returned: always
  type: str
  sample: idle
transition:
  description: The transition under way - its patch, target (C(patched) or C(unpatched))
    and start (microseconds since the epoch); empty strings and 0 when none runs.
  returned: always
  type: dict
  sample: {patch: '', target: '', started_usec: 0}
pending_tasks:
  description: How many tasks the transition under way still waits for.
  returned: always
  type: int
  sample: 0
patches:
  description: Every patch livepatchd knows, in the order livepatchctl lists them.
  returned: always
  type: list
  elements: dict
  sample: [{name: lp_fix, state: applied, enabled: true, transition: false, replace: false,
            stack_order: 1, installed_at: 1764790000000000, applied_at: 1764790001000000,
            skip_reason: '', sha256: 0123abcd, livepatch_objects: []}]
applied:
  description: The names of the applied patches, bottom of the stack first.
  returned: always
  type: list
  elements: str
  sample: [lp_fix]
blocking:
  description: The tasks the transition waits for (empty when none runs, or when
    I(blocking=false)).
  returned: always
  type: list
  elements: dict
  sample: []
check:
  description: C(livepatchctl check) - its exit status (0 every wanted patch applied and no
    transition, 3 a transition under way, 4 a wanted patch not applied, 5 State error) and
    the problems it names.
  returned: always
  type: dict
  sample: {rc: 0, ok: true, problems: []}
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.livepatchd.livepatch.plugins.module_utils.livepatchctl import (
    Livepatchctl, LivepatchctlError, snake_patch)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            blocking=dict(type='bool', default=True),
            livepatchctl=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    ctl = Livepatchctl(module, module.params['livepatchctl'])
    try:
        status = ctl.status() or {}
        rc, check = ctl.check()
    except LivepatchctlError as e:
        module.fail_json(msg='cannot read livepatchd\'s state: %s' % e.message, **e.result())
    patches = [snake_patch(p) for p in status.get('Patches', [])]
    applied = sorted((p for p in patches if p['state'] == 'applied' and p['stack_order']),
                     key=lambda p: p['stack_order'])
    blocking = []
    if module.params['blocking'] and status.get('TransitionPatch'):
        blocking = ctl.blocking()
    check = check or {}
    module.exit_json(
        changed=False,
        kernel=status.get('KernelRelease', ''),
        shim_version=status.get('ShimVersion', ''),
        service_state=status.get('State', ''),
        transition={'patch': status.get('TransitionPatch', ''),
                    'target': status.get('TransitionTarget', ''),
                    'started_usec': status.get('TransitionStartedUSec', 0)},
        pending_tasks=status.get('PendingTasks', 0),
        patches=patches,
        applied=[p['name'] for p in applied],
        blocking=blocking,
        check={'rc': rc, 'ok': bool(check.get('Ok', rc == 0)),
               'problems': check.get('Problems', [])},
    )


if __name__ == '__main__':
    main()
