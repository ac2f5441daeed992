// libyaml (Debian's libyaml-dev): the configuration file's parser. Only its event parser is
// used; BrokerConfig composes the tree itself (YAMLDocument).
#include <yaml.h>
