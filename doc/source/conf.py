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
autodoc_default_options = {'undoc-members': False}
