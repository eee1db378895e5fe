#!/bin/bash
# devstack plugin for cinder_store: installs the package into Glance's
# environment and configures Glance backends of type cinder_store the way
# lib/glance configures cinder stores (service credentials, one backend per
# Cinder volume type, lock path).  Also writes the functional tests'
# environment file: source $CINDER_STORE_DIR/functional.env, then
# tox -e functional.

function _cinder_store_backends {
    if [[ -n "$CINDER_STORE_BACKENDS" ]]; then
        echo "$CINDER_STORE_BACKENDS"
        return
    fi
    local be out=""
    for be in ${CINDER_ENABLED_BACKENDS//,/ }; do
        out+="cs-${be##*:}:${be##*:},"
    done
    echo "${out%,}"
}

function install_cinder_store {
    setup_develop $CINDER_STORE_DIR
}

function configure_cinder_store {
    local backends entry id vtype enabled=""
    backends=$(_cinder_store_backends)
    for entry in ${backends//,/ }; do
        id=${entry%%:*}
        vtype=${entry##*:}
        enabled+="${id}:cinder_store,"
        iniset $GLANCE_API_CONF $id cinder_store_volume_type $vtype
        iniset $GLANCE_API_CONF $id store_description "cinder_store on $vtype"
    done
    local current
    current=$(iniget $GLANCE_API_CONF DEFAULT enabled_backends)
    iniset $GLANCE_API_CONF DEFAULT enabled_backends "${current:+$current,}${enabled%,}"
    if [[ -n "$CINDER_STORE_DEFAULT_BACKEND" ]]; then
        iniset $GLANCE_API_CONF glance_store default_backend $CINDER_STORE_DEFAULT_BACKEND
    fi
    # Service credentials, as lib/glance's set_common_cinder_store_params.
    iniset $GLANCE_API_CONF backend_defaults auth_type password
    iniset $GLANCE_API_CONF backend_defaults auth_url $KEYSTONE_SERVICE_URI_V3
    iniset $GLANCE_API_CONF backend_defaults username glance
    iniset $GLANCE_API_CONF backend_defaults password $SERVICE_PASSWORD
    iniset $GLANCE_API_CONF backend_defaults project_name $SERVICE_PROJECT_NAME
    iniset $GLANCE_API_CONF backend_defaults user_domain_name $SERVICE_DOMAIN_NAME
    iniset $GLANCE_API_CONF backend_defaults project_domain_name $SERVICE_DOMAIN_NAME
    iniset $GLANCE_API_CONF backend_defaults cinder_store_region_name $REGION_NAME
    iniset $GLANCE_API_CONF oslo_concurrency lock_path $GLANCE_LOCK_DIR
    sudo install -o root -m 644 $CINDER_STORE_DIR/etc/glance/rootwrap.d/cinder_store.filters \
        /etc/glance/rootwrap.d/cinder_store.filters
    cat > $CINDER_STORE_DIR/functional.env <<ENV
export OS_CLOUD=devstack-admin
export CINDER_STORE_FUNCTIONAL_CONF=$GLANCE_API_CONF
ENV
}

if is_service_enabled glance && is_service_enabled cinder; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing cinder_store"
        install_cinder_store
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring Glance backends of type cinder_store"
        configure_cinder_store
    fi
    if [[ "$1" == "clean" ]]; then
        rm -f $CINDER_STORE_DIR/functional.env
    fi
fi
