#!/bin/bash
# devstack plugin for cinder_store: installs the package into Glance's
# environment and adds Glance backends of type cinder_store, configured the
# way lib/glance configures its in-tree cinder stores (service credentials,
# TLS, rootwrap, lock path), beside whatever stores devstack configured.
# Every step may run again on a re-stack.  Also writes the functional tests'
# environment file: source $CINDER_STORE_DIR/functional.env, then
# tox -e functional.

# "<id>:<volume-type>[:<cinder-backend>[:multiattach]]" entries, one a line.
function _cinder_store_backends {
    local be
    if [[ -n "$CINDER_STORE_BACKENDS" ]]; then
        echo "${CINDER_STORE_BACKENDS//,/$'\n'}"
        return
    fi
    for be in ${CINDER_ENABLED_BACKENDS//,/ }; do
        echo "cs-${be##*:}:cinder_store-${be##*:}:${be##*:}"
    done
}

function _cinder_store_has_nfs {
    local be
    for be in ${CINDER_ENABLED_BACKENDS//,/ }; do
        [[ "${be%%:*}" == "nfs" ]] && return 0
    done
    return 1
}

function install_cinder_store {
    setup_develop $CINDER_STORE_DIR
}

# enabled_backends without our ids, and ours, sorted by id (a re-stack
# changes nothing): Glance lists an image imported to every store in this
# order, and multi-store clients such as Tempest's waiters expect the ids
# sorted.
function _cinder_store_enabled_backends {
    local ours="$1" current entry kept=""
    current=$(iniget $GLANCE_API_CONF DEFAULT enabled_backends)
    for entry in ${current//,/ }; do
        if [[ ",$ours," != *",${entry%%:*}:cinder_store,"* ]]; then
            kept+="${entry},"
        fi
    done
    echo "${kept}${ours}" | tr ',' '\n' | sort -t: -k1,1 | paste -sd, -
}

# A single-store devstack has no enabled_backends: once ours are enabled,
# Glance runs multi-store, which needs its own file store and the
# reserved stores to be named.
function _cinder_store_multi_store_from_single {
    local datadir
    datadir=$(iniget $GLANCE_API_CONF glance_store filesystem_store_datadir)
    datadir=${datadir:-$GLANCE_IMAGE_DIR}
    iniset $GLANCE_API_CONF file filesystem_store_datadir "$datadir"
    echo "file:file,"
}

function _cinder_store_reserved_stores {
    local store
    for store in os_glance_staging_store os_glance_tasks_store; do
        if [[ -z "$(iniget $GLANCE_API_CONF $store filesystem_store_datadir)" ]]; then
            iniset $GLANCE_API_CONF $store filesystem_store_datadir \
                "$DATA_DIR/glance/$store/"
        fi
    done
}

function configure_cinder_store {
    local entry id vtype ours="" first="" single=""
    if [[ -z "$(iniget $GLANCE_API_CONF DEFAULT enabled_backends)" ]]; then
        single=$(_cinder_store_multi_store_from_single)
    fi
    for entry in $(_cinder_store_backends); do
        IFS=: read -r id vtype _ <<< "$entry"
        first=${first:-$id}
        ours+="${id}:cinder_store,"
        iniset $GLANCE_API_CONF $id cinder_store_volume_type $vtype
        iniset $GLANCE_API_CONF $id store_description "cinder_store on $vtype"
    done
    iniset $GLANCE_API_CONF DEFAULT enabled_backends \
        "$(_cinder_store_enabled_backends "${single}${ours%,}")"
    if [[ -n "$CINDER_STORE_DEFAULT_BACKEND" ]]; then
        iniset $GLANCE_API_CONF glance_store default_backend $CINDER_STORE_DEFAULT_BACKEND
    elif [[ -z "$(iniget $GLANCE_API_CONF glance_store default_backend)" ]]; then
        iniset $GLANCE_API_CONF glance_store default_backend $first
    fi
    _cinder_store_reserved_stores

    # Service credentials, as lib/glance's set_common_cinder_store_params.
    iniset $GLANCE_API_CONF backend_defaults auth_type password
    iniset $GLANCE_API_CONF backend_defaults auth_url $KEYSTONE_SERVICE_URI_V3
    iniset $GLANCE_API_CONF backend_defaults username glance
    iniset $GLANCE_API_CONF backend_defaults password $SERVICE_PASSWORD
    iniset $GLANCE_API_CONF backend_defaults project_name $SERVICE_PROJECT_NAME
    iniset $GLANCE_API_CONF backend_defaults user_domain_name $SERVICE_DOMAIN_NAME
    iniset $GLANCE_API_CONF backend_defaults project_domain_name $SERVICE_DOMAIN_NAME
    iniset $GLANCE_API_CONF backend_defaults cinder_store_region_name $REGION_NAME
    if is_service_enabled tls-proxy; then
        # lib/glance points the in-tree store at https; we verify with the
        # same CA bundle.
        iniset $GLANCE_API_CONF backend_defaults cafile $SSL_BUNDLE_FILE
    fi
    iniset $GLANCE_API_CONF oslo_concurrency lock_path $GLANCE_LOCK_DIR
    # cinder_store keeps its records there too: glance-api's user must own
    # it, whoever (a test run, a cinder-store-check) comes first.
    sudo install -d -o $STACK_USER $GLANCE_LOCK_DIR
    configure_cinder_store_rootwrap

    _cinder_store_functional_env > $CINDER_STORE_DIR/functional.env
}

# What the functional tests need to find this cloud and its backends.
function _cinder_store_functional_env {
    local pair role id
    echo "export OS_CLOUD=devstack-admin"
    echo "export OS_CLIENT_CONFIG_FILE=/etc/openstack/clouds.yaml"
    echo "export CINDER_STORE_FUNCTIONAL_CONF=$GLANCE_API_CONF"
    for pair in ${CINDER_STORE_FUNCTIONAL_ROLES//,/ }; do
        IFS=: read -r role id <<< "$pair"
        echo "export CINDER_STORE_FUNCTIONAL_${role^^}_BACKEND=$id"
    done
}

# Device hand-over to the unprivileged glance-api goes through
# glance-rootwrap, with glance_store's rootwrap.conf that lib/glance copies
# into $GLANCE_CONF_DIR.
function configure_cinder_store_rootwrap {
    local conf=$GLANCE_CONF_DIR/rootwrap.conf
    local filters=$GLANCE_CONF_DIR/rootwrap.d/cinder_store.filters
    sudo install -d -o $STACK_USER $GLANCE_CONF_DIR/rootwrap.d
    if _cinder_store_has_nfs; then
        sudo install -o root -m 644 \
            $CINDER_STORE_DIR/etc/glance/rootwrap.d/cinder_store.filters $filters
    else
        # mount/umount would let any mount run as root: NFS-style only.
        grep -v -E '^(mount|umount):' \
            $CINDER_STORE_DIR/etc/glance/rootwrap.d/cinder_store.filters \
            | sudo tee $filters > /dev/null
    fi
    if [[ -f $conf ]]; then
        # Our filters beside glance_store's, wherever the conf dir is; the
        # virtualenv's privsep-helper admitted.
        iniset -sudo $conf DEFAULT filters_path \
            "$GLANCE_CONF_DIR/rootwrap.d,/etc/glance/rootwrap.d,/usr/share/glance/rootwrap"
        iniset -sudo $conf DEFAULT exec_dirs \
            "$GLANCE_BIN_DIR,/sbin,/usr/sbin,/bin,/usr/bin,/usr/local/bin,/usr/local/sbin"
    fi
    iniset $GLANCE_API_CONF backend_defaults cinder_store_rootwrap_config $conf
    # "sudo glance-rootwrap": sudo finds only what is on its secure_path.
    if [[ -x $GLANCE_BIN_DIR/glance-rootwrap &&
          "$GLANCE_BIN_DIR" != "$CINDER_STORE_SUDO_BIN_DIR" ]]; then
        sudo ln -sf $GLANCE_BIN_DIR/glance-rootwrap \
            $CINDER_STORE_SUDO_BIN_DIR/glance-rootwrap
    fi
}

# After Cinder is up: the volume types of entries naming a Cinder backend.
function create_cinder_store_volume_types {
    local entry id vtype be flag
    local -a extra
    for entry in $(_cinder_store_backends); do
        IFS=: read -r id vtype be flag <<< "$entry"
        [[ -z "$be" ]] && continue
        extra=()
        if [[ "$flag" == "multiattach" ]]; then
            extra=(--property "multiattach=<is> True")
        fi
        if ! openstack --os-cloud devstack-admin volume type show $vtype > /dev/null 2>&1; then
            openstack --os-cloud devstack-admin volume type create \
                --property volume_backend_name=$be "${extra[@]}" $vtype
        fi
    done
}

# A Cinder backend type "loopfile" (CINDER_ENABLED_BACKENDS=loopfile:<name>):
# the tests' loop-file volume driver, for machines without LVM or iSCSI.
# lib/cinder calls these for each such backend.  cinder-volume runs as
# $STACK_USER, so losetup goes through sudo.
function configure_cinder_backend_loopfile {
    local be_name=$1 mode=block
    if [[ ",$CINDER_STORE_LOOPFILE_FILE_BACKENDS," == *",$be_name,"* ]]; then
        mode=file
    fi
    iniset $CINDER_CONF $be_name volume_backend_name $be_name
    iniset $CINDER_CONF $be_name volume_driver \
        cinder_store.tests.functional.loopfile.driver.LoopFileDriver
    iniset $CINDER_CONF $be_name loopfile_volume_dir \
        $CINDER_STORE_LOOPFILE_DIR/$be_name
    iniset $CINDER_CONF $be_name loopfile_mode $mode
    iniset $CINDER_CONF $be_name loopfile_root_helper sudo
}

function init_cinder_backend_loopfile {
    local be_name=$1
    mkdir -p $CINDER_STORE_LOOPFILE_DIR/$be_name
}

# Glance's images are volumes of the service project: devstack's default
# quota (10) fails a parallel test run.  lib/cinder raises it only for its
# in-tree store (USE_CINDER_FOR_GLANCE); never lowered here.
function raise_cinder_store_volume_quota {
    local current
    # "quota show" lists Resource/Limit rows in recent clients
    current=$(openstack --os-cloud devstack-admin quota show -f value \
        -c Resource -c Limit $SERVICE_PROJECT_NAME |
        awk '$1 == "volumes" {print $2}')
    if [[ "$current" != "-1" ]] && \
            (( ${current:-0} < CINDER_STORE_SERVICE_VOLUME_QUOTA )); then
        openstack --os-cloud devstack-admin quota set \
            --volumes $CINDER_STORE_SERVICE_VOLUME_QUOTA $SERVICE_PROJECT_NAME
    fi
}

if is_service_enabled glance && is_service_enabled cinder; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing cinder_store"
        install_cinder_store
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring Glance backends of type cinder_store"
        configure_cinder_store
    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        echo_summary "Creating the volume types of cinder_store backends"
        create_cinder_store_volume_types
        raise_cinder_store_volume_quota
    fi
    if [[ "$1" == "clean" ]]; then
        rm -f $CINDER_STORE_DIR/functional.env
        sudo rm -f $GLANCE_CONF_DIR/rootwrap.d/cinder_store.filters
    fi
fi
