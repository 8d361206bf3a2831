package nflog

// Values from linux/netfilter/nfnetlink_log.h, which golang.org/x/sys/unix
// does not define.
const (
	// enum nfulnl_msg_types
	nfulnlMsgPacket = 0 // NFULNL_MSG_PACKET: packet from the kernel
	nfulnlMsgConfig = 1 // NFULNL_MSG_CONFIG: configure a group
	nfulnlMsgMax    = 2 // NFULNL_MSG_MAX: first type the subsystem does not handle

	// enum nfulnl_attr_type (attributes of NFULNL_MSG_PACKET)
	nfulaPacketHdr     = 1  // NFULA_PACKET_HDR: struct nfulnl_msg_packet_hdr
	nfulaMark          = 2  // NFULA_MARK: be32 nfmark
	nfulaIfindexIndev  = 4  // NFULA_IFINDEX_INDEV: be32 ifindex
	nfulaIfindexOutdev = 5  // NFULA_IFINDEX_OUTDEV: be32 ifindex
	nfulaPayload       = 9  // NFULA_PAYLOAD: packet from the network header on
	nfulaPrefix        = 10 // NFULA_PREFIX: NUL-terminated log prefix
	nfulaSeq           = 12 // NFULA_SEQ: be32 instance-local sequence number

	// enum nfulnl_attr_config (attributes of NFULNL_MSG_CONFIG)
	nfulaCfgCmd     = 1 // NFULA_CFG_CMD: struct nfulnl_msg_config_cmd
	nfulaCfgMode    = 2 // NFULA_CFG_MODE: struct nfulnl_msg_config_mode
	nfulaCfgTimeout = 4 // NFULA_CFG_TIMEOUT: be32, in 1/100 s
	nfulaCfgFlags   = 6 // NFULA_CFG_FLAGS: be16

	// enum nfulnl_msg_config_cmds
	nfulnlCfgCmdBind   = 1 // NFULNL_CFG_CMD_BIND
	nfulnlCfgCmdUnbind = 2 // NFULNL_CFG_CMD_UNBIND

	nfulnlCopyPacket = 0x02   // NFULNL_COPY_PACKET
	nfulnlCfgFSeq    = 0x0001 // NFULNL_CFG_F_SEQ

	// NFULNL_COPY_RANGE_MAX in net/netfilter/nfnetlink_log.c: the kernel
	// silently lowers larger copy ranges to this.
	copyRangeMax = 0xFFFF - 4
)

// Values from linux/netfilter.h and linux/netlink.h, repeated here so that
// Parse builds on every platform.
const (
	nfprotoIPv4 = 2  // NFPROTO_IPV4, equal to AF_INET on Linux
	nfprotoIPv6 = 10 // NFPROTO_IPV6, equal to AF_INET6 on Linux

	nlaTypeMask = 0x3fff // NLA_TYPE_MASK: clears NLA_F_NESTED and NLA_F_NET_BYTEORDER
	nlaHdrLen   = 4      // NLA_HDRLEN
	nfgenmsgLen = 4      // sizeof(struct nfgenmsg)
)

// IP protocol numbers and IPv6 extension headers (linux/in.h, linux/in6.h).
const (
	protoHopByHop = 0
	protoICMP     = 1
	protoTCP      = 6
	protoUDP      = 17
	protoRouting  = 43
	protoFragment = 44
	protoICMPv6   = 58
	protoDstOpts  = 60
	protoSCTP     = 132
	protoUDPLite  = 136
)
