# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

import inspect

from sphinx.util.docstrings import prepare_docstring

extensions = ['sphinx.ext.autodoc', 'oslo_config.sphinxext',
              'openstackdocstheme']
source_suffix = '.rst'
master_doc = 'index'
project = 'cinder_store'
copyright = '2026, The cinder_store authors'
exclude_patterns = ['_build']
html_theme = 'openstackdocs'
# openstackdocstheme: where bugs and sources would be reported and shown
openstackdocs_repo_name = 'openstack/cinder-store'
openstackdocs_bug_project = 'cinder-store'
openstackdocs_bug_tag = ''
openstackdocs_auto_name = False
openstackdocs_pdf_link = False
pygments_style = 'native'
autodoc_member_order = 'bysource'
autodoc_default_options = {'undoc-members': False,
                           'exclude-members': 'OPTIONS'}


def _undecorated(obj, name):
    """The function ``name`` inside glance_store's decorators, if any.

    Its decorators (capabilities.check, back_compat_add) do not use
    functools.wraps: the docstring and signature live in their closures.
    """
    todo, seen = [obj], set()
    while todo:
        func = todo.pop()
        if id(func) in seen or not callable(func):
            continue
        seen.add(id(func))
        if func is not obj and getattr(func, '__name__', None) == name:
            return func
        todo.extend(c.cell_contents for c in
                    (getattr(func, '__closure__', None) or ()))
    return None


def _signature(app, what, name, obj, options, signature, annotation):
    inner = _undecorated(obj, name.rsplit('.', 1)[-1])
    if what == 'method' and inner is not None:
        params = list(inspect.signature(inner).parameters.values())[1:]
        return str(inspect.Signature(params)), annotation
    return None


def _docstring(app, what, name, obj, options, lines):
    inner = _undecorated(obj, name.rsplit('.', 1)[-1])
    if what == 'method' and inner is not None and inner.__doc__:
        lines[:] = prepare_docstring(inner.__doc__)


def setup(app):
    app.connect('autodoc-process-signature', _signature)
    app.connect('autodoc-process-docstring', _docstring)
